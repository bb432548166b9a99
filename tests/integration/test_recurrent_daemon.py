"""A GRU and an LSTM decoder served by the daemon over real LSL and ZeroMQ.

replay (LSL outlet) → ``rtdecode serve`` (its own chain: rectify, smoothing, decimation) →
ZeroMQ subscriber. What the daemon publishes equals ``rtdecode predict`` on the same file and
the torch model on the chain's output; the first ``memory_frames − 1`` outputs are flagged
``WARMUP`` (the declared memory horizon of a recurrent decoder), the rest are not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from rtdecode.commands.predict import predict_recording  # noqa: E402
from rtdecode.dsp import build_chain  # noqa: E402
from rtdecode.io.readers import read_recording  # noqa: E402
from rtdecode.nn.export import export_streaming  # noqa: E402
from rtdecode.nn.recurrent import GRUDecoder, LSTMDecoder  # noqa: E402
from rtdecode.types import Flags  # noqa: E402
from tests.integration.test_daemon_e2e import serve_replay  # noqa: E402

FS, CH, SECONDS = 500.0, 8, 4.0
CHAIN = [{"kind": "rectify"}, {"kind": "smooth", "window_s": 0.04}, {"kind": "decimate", "factor": 10}]


def _recording(path: Path) -> Path:
    rng = np.random.default_rng(7)
    n = int(SECONDS * FS)
    t = np.arange(n) / FS
    env = 1.0 + np.sin(2 * np.pi * np.outer(t, np.linspace(0.3, 1.1, CH)))
    np.savez(path, x=(env * rng.standard_normal((n, CH))).astype(np.float32), fs=FS)
    return path


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_daemon_serves_a_recurrent_decoder_like_predict_and_torch(cell: str, tmp_path: Path, unique_name: str,
                                                                  ipc_endpoint: str) -> None:
    torch.manual_seed(11)
    cls = GRUDecoder if cell == "gru" else LSTMDecoder
    model = cls(CH, 2, hidden=16, layers=2, in_taps=3).eval()
    model.memory_frames = 30
    onnx_path = export_streaming(model, tmp_path / f"{cell}.onnx", rate_hz=FS, channels=CH,
                                 preprocessing=CHAIN, outputs=["a", "b"])
    rec_path = _recording(tmp_path / "rec.npz")
    rec = read_recording(rec_path)
    msgs, _status, code = serve_replay(tmp_path, unique_name, ipc_endpoint, onnx_path, rec_path, channels=CH,
                                       rate=FS, start_s=0.0, stop_s=SECONDS, n=rec.n_samples)
    assert code == 0

    off = predict_recording(onnx_path, rec)
    assert len(msgs) == off["y"].shape[0] == rec.n_samples // 10
    y = np.vstack([m.values for m in msgs])
    np.testing.assert_allclose(y, off["y"], rtol=1e-4, atol=1e-5)
    frames, _ = build_chain(CHAIN, FS, CH).process(rec.x, np.asarray(rec.t))
    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(frames.T[None], dtype=np.float32)))[0].numpy().T
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    flags = np.array([int(m.flags) for m in msgs])
    np.testing.assert_array_equal(flags, off["flags"])
    warm = (flags & int(Flags.WARMUP)) != 0
    assert warm[:29].all() and not warm[29:].any()
