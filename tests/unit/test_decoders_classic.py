"""Classic decoders (Kalman, population vector, Wiener): streaming == offline in numpy and in
ONNX (random chunking through StreamingModel), steady-state vs time-varying Kalman filter,
and that each one actually decodes seed 002's simulated cortex."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.decoders import (
    KalmanDecoder,
    PopulationVectorDecoder,
    StreamingDecoder,
    WienerDecoder,
    fit_linear_gaussian,
)
from rtdecode.decoders.linear import fit_wiener
from rtdecode.errors import ModelError, StageError
from rtdecode.export.classic_onnx import decoder_graph, decoder_metadata
from rtdecode.export.onnx_graphs import write_model
from rtdecode.runtime.streaming import StreamingModel
from rtdecode.sources.simulator import CortexSimulator
from tests.chunking import random_cuts, run_in_chunks

N_NEURONS = 30
FACTOR = 5  # 100 Hz samples -> 20 Hz bins


def _binned(seed: int, frames: int, subject: int = 3) -> tuple[np.ndarray, np.ndarray]:
    sim = CortexSimulator(N_NEURONS, rate_hz=100.0, seed=seed, subject_seed=subject)
    spikes, kin = sim.generate(frames * FACTOR)
    x = spikes.reshape(frames, FACTOR, N_NEURONS).sum(axis=1, dtype=np.float64)
    v = kin[:, 2:4].reshape(frames, FACTOR, 2).mean(axis=1, dtype=np.float64)
    return x, v


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": _binned(1, 2000), "test": _binned(2, 600)}


def _make(kind: str) -> StreamingDecoder:
    return {"kalman": KalmanDecoder(), "wiener": WienerDecoder(lags=4),
            "population_vector": PopulationVectorDecoder(lags=3)}[kind]


KINDS = ["kalman", "wiener", "population_vector"]


@pytest.fixture(scope="module")
def fitted(data: dict) -> dict[str, StreamingDecoder]:
    return {k: _make(k).fit(*data["train"]) for k in KINDS}


def _r2(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    return 1 - ((y - yhat) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_streaming_equals_offline(kind: str, fitted: dict, data: dict) -> None:
    dec = fitted[kind]
    x = data["test"][0]
    offline = dec.predict(x)  # an independent offline implementation (dlsim / lagged design)
    rng = np.random.default_rng(5)
    dec.reset()
    streamed = run_in_chunks(dec.step, x, random_cuts(len(x), rng))
    np.testing.assert_allclose(streamed, offline, rtol=1e-10, atol=1e-10)
    # segments restart the decoder: equal to separate runs
    seg = np.repeat([0, 1], [250, 350])
    both = dec.predict(x, seg)
    np.testing.assert_allclose(both[:250], dec.predict(x[:250]), atol=1e-10)
    np.testing.assert_allclose(both[250:], dec.predict(x[250:]), atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_decoders_decode_held_out_velocity(kind: str, fitted: dict, data: dict) -> None:
    x, v = data["test"]
    r2 = _r2(v[20:], fitted[kind].predict(x)[20:])
    assert (r2 > 0.6).all(), r2


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_graph_equals_numpy_under_random_chunking(kind: str, fitted: dict, data: dict,
                                                       tmp_path: Path) -> None:
    dec = fitted[kind]
    meta = decoder_metadata(dec, name=f"sim_{kind}", rate_hz=20.0, output_names=["vx", "vy"],
                            output_units=["cm/s", "cm/s"], provenance={"data": "test"})
    path = write_model(decoder_graph(dec, meta), tmp_path / f"{kind}.onnx")
    model = StreamingModel(path).open()
    assert model.meta is not None and model.meta.receptive_field >= 1
    x = data["test"][0]
    ref = dec.predict(x)
    rng = np.random.default_rng(11)
    for _ in range(2):
        model.reset()
        out = run_in_chunks(model.step, x.astype(np.float32), random_cuts(len(x), rng))
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * scale)


def test_kalman_onnx_state_is_the_filter_state(fitted: dict, tmp_path: Path) -> None:
    dec = fitted["kalman"]
    meta = decoder_metadata(dec, name="kf", rate_hz=20.0, output_names=["vx", "vy"])
    model = StreamingModel(write_model(decoder_graph(dec, meta), tmp_path / "kf.onnx")).open()
    assert [s.shape for s in model.meta.states] == [[1, 2]]
    assert model.meta.receptive_field == dec.receptive_field()


def test_time_varying_kalman_converges_to_steady_state(data: dict) -> None:
    x, v = data["train"]
    tv = KalmanDecoder(steady_state=False).fit(x, v)
    ss = KalmanDecoder().fit(x, v)
    xt = data["test"][0]
    y_tv = tv.predict(xt[:300])
    y_ss = ss.predict(xt[:300])
    tv.reset()
    tv.step(xt[:300])
    np.testing.assert_allclose(tv.K, ss.K_inf, rtol=1e-6, atol=1e-9)  # the gain converged to K∞
    # outputs differ only in the start-up transient
    assert np.abs(y_tv[:3] - y_ss[:3]).max() > 1e-6
    np.testing.assert_allclose(y_tv[150:], y_ss[150:], atol=1e-6 * float(np.abs(y_ss).max()))


def test_fit_recovers_state_space_model() -> None:
    rng = np.random.default_rng(0)
    A = np.array([[0.9, 0.2], [-0.1, 0.8]])
    H = rng.standard_normal((6, 2))
    n = 20000
    X = np.zeros((n, 2))
    for t in range(1, n):
        X[t] = A @ X[t - 1] + 0.5 * rng.standard_normal(2)
    Z = X @ H.T + 1.0 + 0.3 * rng.standard_normal((n, 6))
    m = fit_linear_gaussian(X, Z)
    np.testing.assert_allclose(m.A, A, atol=0.02)
    np.testing.assert_allclose(m.H, H, atol=0.02)
    np.testing.assert_allclose(m.c, 1.0, atol=0.05)
    np.testing.assert_allclose(np.diag(m.W), 0.25, rtol=0.05)
    np.testing.assert_allclose(np.diag(m.Q), 0.09, rtol=0.05)


def test_population_vector_recovers_preferred_directions(fitted: dict) -> None:
    pv = fitted["population_vector"]
    truth = CortexSimulator(N_NEURONS, rate_hz=100.0, subject_seed=3).preferred_directions
    cos = np.sum(pv.directions * truth, axis=1)
    assert np.median(np.degrees(np.arccos(np.clip(cos, -1, 1)))) < 10.0
    assert pv.used.all()


def test_wiener_decoder_wraps_fit_wiener(data: dict) -> None:
    x, v = data["train"]
    dec = WienerDecoder(lags=4, ridge=1e-3).fit(x, v)
    W, b = fit_wiener(x, v, 4, ridge=1e-3)
    np.testing.assert_allclose(dec.W, W, rtol=1e-6)
    np.testing.assert_allclose(dec.b, b, rtol=1e-6)


def test_errors_say_what_and_how() -> None:
    with pytest.raises(ModelError, match="not fitted"):
        KalmanDecoder().step(np.zeros((1, 3)))
    dec = WienerDecoder(lags=2).fit(np.random.default_rng(0).standard_normal((50, 3)),
                                    np.random.default_rng(1).standard_normal((50, 2)))
    with pytest.raises(StageError, match=r"expected \(m, 3\)"):
        dec.step(np.zeros((4, 5)))
    counts = np.random.default_rng(0).poisson(3, (200, 4)).astype(float)
    tv = KalmanDecoder(steady_state=False).fit(counts, np.random.default_rng(1).standard_normal((200, 2)))
    with pytest.raises(ModelError, match="steady-state"):
        decoder_graph(tv, decoder_metadata(tv, name="x", rate_hz=10.0, output_names=["a", "b"]))
