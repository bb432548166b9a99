"""GRU / LSTM decoders → streaming ONNX with explicit hidden state.

ONNX Runtime equals torch for the outputs and for every next state after every chunk (random
chunkings, 1-frame chunks included; 0-frame chunks through the daemon's StreamingModel, which
never calls the graph for them), the graph uses the standard GRU / LSTM operators, the state
names and shapes in the metadata are the torch model's, and ``rtdecode verify`` passes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from rtdecode.nn.export import export_streaming  # noqa: E402
from rtdecode.nn.models import LinearDecoder, StackedDecoder  # noqa: E402
from rtdecode.nn.recurrent import GRUDecoder, LSTMDecoder  # noqa: E402
from rtdecode.nn.verify import verify_model  # noqa: E402
from rtdecode.runtime.streaming import StreamingModel, read_metadata  # noqa: E402
from tests.integration.test_nn_export import _cli  # noqa: E402

CASES = {
    "gru": (lambda: GRUDecoder(6, 3, hidden=12, proj=8), "GRU"),
    "gru-2-taps": (lambda: GRUDecoder(6, 3, hidden=10, layers=2, in_taps=5), "GRU"),
    "lstm": (lambda: LSTMDecoder(6, 3, hidden=9), "LSTM"),
    "lstm-2-taps": (lambda: LSTMDecoder(6, 3, hidden=7, layers=2, proj=5, in_taps=3), "LSTM"),
}


def _chunks(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes = [1, 0, 1, 2]
    while sum(sizes) < n:
        sizes.append(int(rng.choice([0, 1, 3, 7, 40, 111])))
    return sizes


def _export(model, tmp_path: Path, name: str) -> Path:
    return export_streaming(model, tmp_path / f"{name}.onnx", rate_hz=50.0, channels=model.in_channels,
                            preprocessing=[], outputs=[f"o{i}" for i in range(model.out_channels)],
                            provenance={"data": "random"})


@pytest.mark.parametrize("case", list(CASES))
def test_onnx_equals_torch_for_outputs_and_every_next_state(case: str, tmp_path: Path) -> None:
    make, op = CASES[case]
    torch.manual_seed(0)
    model = make().eval()
    model.memory_frames = 25
    path = _export(model, tmp_path, case)

    meta = read_metadata(path)
    assert meta.receptive_field == 25 and meta.delay == 0
    assert [(s.name, s.shape) for s in meta.states] == \
        [(f"state_{i}", list(s)) for i, s in enumerate(model.state_shapes(1))]
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert op in ops and {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    n = 400
    x = rng.standard_normal((n, 6)).astype(np.float32)
    st_t = model.zero_states(1)
    st_o = {s.name: np.zeros(s.shape, np.float32) for s in meta.states}
    start = 0
    for size in _chunks(n, 2):
        xc = x[start:start + size]
        start += size
        with torch.no_grad():
            y_t, st_t = model.step(torch.from_numpy(xc.T[None].copy()), st_t)
        if size == 0:
            assert y_t.shape == (1, 3, 0)
            continue
        res = sess.run(None, {"x": xc.T[None].copy(), **st_o})
        np.testing.assert_allclose(res[0], y_t.numpy(), rtol=1e-5, atol=1e-5)
        st_o = {s.name: r for s, r in zip(meta.states, res[1:], strict=True)}
        for s, want in zip(meta.states, st_t, strict=True):
            np.testing.assert_allclose(st_o[s.name], want.numpy(), rtol=1e-5, atol=1e-5, err_msg=s.name)
        if start >= n:
            break

    # the daemon's StreamingModel, 0-frame chunks included, equals one torch offline pass
    with torch.no_grad():
        ref = model(torch.from_numpy(x.T[None].copy()))[0].numpy().T
    with StreamingModel(path) as m:
        parts, start = [], 0
        for size in _chunks(n, 3):
            parts.append(m.step(x[start:start + size]))
            start += size
            if start >= n:
                break
    np.testing.assert_allclose(np.concatenate(parts), ref, rtol=1e-4, atol=1e-5)


def test_verify_passes_on_recurrent_and_stacked_models_and_catches_tampering(tmp_path: Path) -> None:
    torch.manual_seed(2)
    gru = GRUDecoder(4, 2, hidden=6, in_taps=2).eval()
    lstm = LSTMDecoder(4, 2, hidden=5).eval()
    stacked = StackedDecoder.from_members([gru, lstm, LinearDecoder(4, 2, 3)], torch.randn(2, 6),
                                          torch.randn(2))
    for name, model in (("gru", gru), ("lstm", lstm), ("stacked", stacked)):
        path = _export(model, tmp_path, name)
        rep = verify_model(path, frames=800, seed=5)
        assert rep["ok"], rep
        assert rep["skipped"] == []
        n_states = len(model.state_shapes())
        finals = [c for c in rep["comparisons"] if c["name"].startswith("final state_")]
        assert len(finals) == n_states
        assert _cli("verify", str(path), "--frames", "300") == 0
    # a tampered recurrent weight in the ONNX graph is caught
    proto = onnx.load(str(tmp_path / "gru.onnx"))
    rnn = next(n for n in proto.graph.node if n.op_type == "GRU")
    init = next(t for t in proto.graph.initializer if t.name == rnn.input[2])  # recurrence weights R
    arr = onnx.numpy_helper.to_array(init).copy() + 0.05
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(proto, str(tmp_path / "gru.onnx"))
    rep = verify_model(tmp_path / "gru.onnx", frames=300, seed=5)
    assert not rep["ok"]
    assert any(not c["ok"] for c in rep["comparisons"] if "torch" in c["name"])
