"""The classic EMG decoder (TD features → LDA / ridge): numpy streaming == offline, the ONNX graph
with the window as state == numpy under random chunking (through the daemon's StreamingModel),
``rtdecode verify`` passes, and it decodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from rtdecode.decoders.td import TDDecoder  # noqa: E402
from rtdecode.dsp.td import td_features  # noqa: E402
from rtdecode.errors import ConfigError, ModelError  # noqa: E402
from rtdecode.export.classic_onnx import decoder_graph, decoder_metadata  # noqa: E402
from rtdecode.export.onnx_graphs import write_model  # noqa: E402
from rtdecode.nn.verify import verify_model  # noqa: E402
from rtdecode.runtime.streaming import StreamingModel  # noqa: E402
from tests.chunking import random_cuts, run_in_chunks  # noqa: E402

#: Chunk sizes (0 … longer than the window).
SIZES = (0, 1, 2, 5, 17, 64, 300)


def _emg(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes that differ in the amplitude of channel 0 and the frequency of channel 1."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) // 400) % 3
    x = rng.standard_normal((n, 3))
    x[:, 0] *= 1.0 + y
    x[:, 1] = np.sin(np.cumsum(0.2 + 0.6 * y)) + 0.3 * rng.standard_normal(n)
    return x, y


@pytest.fixture(scope="module")
def fitted() -> dict[str, TDDecoder]:
    x, y = _emg(6000, 0)
    return {"lda": TDDecoder(40, 0.05, head="lda", stride=3).fit(x, y),
            "ridge": TDDecoder(40, 0.05, ("mav", "zc", "rms"), head="ridge").fit(x, np.c_[y, 2.0 * y - 1])}


def test_zero_history_is_a_window_of_zeros_and_rms_is_the_root_mean_square() -> None:
    x = np.random.default_rng(1).standard_normal((50, 2))
    z = td_features(x, 6, 0.1, ("mav", "wl", "zc", "ssc", "rms"), zero_history=True)
    padded = td_features(np.vstack([np.zeros((7, 2)), x]), 6, 0.1, ("mav", "wl", "zc", "ssc", "rms"))[7:]
    np.testing.assert_allclose(z, padded)
    np.testing.assert_allclose(z[10:, 8:], np.sqrt([[np.mean(x[t - 5:t + 1, c] ** 2) for c in range(2)]
                                                    for t in range(10, 50)]))
    with pytest.raises(ConfigError, match="unknown time-domain features"):
        td_features(x, 6, 0.1, ("mav", "iemg"))


@pytest.mark.parametrize("head", ["lda", "ridge"])
def test_numpy_streaming_equals_offline(head: str, fitted: dict) -> None:
    dec = fitted[head]
    x, _ = _emg(1500, 2)
    offline = dec.predict(x)
    dec.reset()
    streamed = run_in_chunks(dec.step, x, random_cuts(len(x), np.random.default_rng(3), SIZES))
    np.testing.assert_allclose(streamed, offline, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("head", ["lda", "ridge"])
def test_onnx_window_state_equals_numpy_under_random_chunking_and_verifies(head: str, fitted: dict,
                                                                          tmp_path: Path) -> None:
    dec = fitted[head]
    names = ["rest", "a", "b"] if head == "lda" else ["f0", "f1"]
    meta = decoder_metadata(dec, name=f"td_{head}", rate_hz=500.0, output_names=names)
    path = write_model(decoder_graph(dec, meta), tmp_path / f"td_{head}.onnx")
    model = StreamingModel(path).open()
    assert [s.shape for s in model.meta.states] == [[1, 3, 41]] and model.meta.receptive_field == 42
    x, _ = _emg(1500, 4)
    ref = dec.predict(x)
    rng = np.random.default_rng(5)
    for _ in range(2):
        model.reset()
        out = run_in_chunks(model.step, x.astype(np.float32), random_cuts(len(x), rng, SIZES))
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))
    report = verify_model(path)
    assert report["ok"], report


def test_the_decoders_decode_held_out_data(fitted: dict) -> None:
    x, y = _emg(3000, 6)
    proba = fitted["lda"].predict(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(np.argmax(proba, axis=1)[60:] == y[60:]) > 0.9
    est = fitted["ridge"].predict(x)
    assert np.corrcoef(est[60:, 0], y[60:])[0, 1] > 0.8


def test_a_class_missing_from_the_fit_gets_probability_zero() -> None:
    x, y = _emg(3000, 7)
    keep = y != 1
    dec = TDDecoder(40, head="lda").fit(x, y, keep=keep)
    dec_g = dec.fit_features(dec.features_of(x), y, np.flatnonzero(keep), n_inputs=3, n_classes=4)
    p = dec_g.predict(x)
    assert p.shape == (3000, 4) and p[:, 1].max() < 1e-6 and p[:, 3].max() < 1e-6


def test_errors_say_what_and_how() -> None:
    with pytest.raises(ModelError, match="window"):
        TDDecoder(1)
    with pytest.raises(ModelError, match="head"):
        TDDecoder(10, head="svm")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="not fitted"):
        TDDecoder(10).step(np.zeros((2, 3)))
