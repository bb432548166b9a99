"""Streaming equals offline: every preprocessing stage, fed in random chunks, gives the
same output and output times as one call on the whole recording, and that equals the
offline scipy / numpy computation (zero initial state = front zero padding)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from rtdecode.dsp import Chain, build_chain
from rtdecode.dsp.td import TD_FEATURES, td_features

FS = 1000.0
N_SAMPLES = 3000
N_CH = 5

RTOL = 1e-9
ATOL = 1e-9  # signals are O(1..100): rounding only


@pytest.fixture(scope="module")
def recording() -> tuple[np.ndarray, np.ndarray]:
    """Seeded multichannel test signal: noise + 10 Hz + 50 Hz + per-channel offsets."""
    rng = np.random.default_rng(20240601)
    t = 1234.5 + np.arange(N_SAMPLES) / FS
    x = (
        rng.standard_normal((N_SAMPLES, N_CH)) * 20.0
        + 30.0 * np.sin(2 * np.pi * 50.0 * t)[:, None]
        + 10.0 * np.sin(2 * np.pi * 10.0 * t)[:, None]
        + np.arange(N_CH) * 5.0
    )
    return x, t


def _gauss_taps(sigma_s: float, fs: float) -> np.ndarray:
    half = int(round(3 * sigma_s * fs))
    k = np.arange(-half, half + 1)
    g = np.exp(-0.5 * (k / (sigma_s * fs)) ** 2)
    return g / g.sum()


def _fir(taps: np.ndarray, x: np.ndarray) -> np.ndarray:
    return signal.lfilter(taps, [1.0], x, axis=0)


def _crossings(x: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Per-sample crossings of ``thr`` (signs give the direction), the signal 0 before the start."""
    past = x < thr if (thr < 0).all() else x > thr
    before = np.vstack([np.zeros((1, x.shape[1]), bool), past[:-1]])
    return (past & ~before).astype(np.float64)


def _bins(a: np.ndarray, t: np.ndarray, f: int, mean: bool = False) -> tuple[np.ndarray, np.ndarray]:
    n = len(a) // f * f
    y = a[:n].reshape(-1, f, a.shape[1]).sum(axis=1)
    return (y / f if mean else y), t[f - 1 : n : f]


def _car(x: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    y = x.copy()
    for g in groups:
        y[:, g] = x[:, g] - x[:, g].mean(axis=1, keepdims=True)
    return y


RMS = np.array([20.0, 21.0, 22.0, 23.0, 24.0])


def _aa(factor: int, fs: float) -> np.ndarray:
    return signal.butter(8, 0.8 * fs / factor / 2, btype="lowpass", fs=fs, output="sos")


# (id, spec, offline reference (x, t) -> (y, t_out))
CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("scale", {"kind": "scale", "gain": 2.5, "offset": 1.0}, lambda x, t: ((x - 1) * 2.5, t)),
    (
        "scale-per-channel",
        {"kind": "scale", "gain": [1, 2, 3, 4, 5], "offset": [0, 1, 2, 3, 4]},
        lambda x, t: ((x - np.arange(5)) * np.arange(1, 6), t),
    ),
    *[
        (
            f"butter-{btype}-{order}",
            {"kind": "butter", "btype": btype, "order": order, "cutoff_hz": cut},
            (
                lambda x, t, btype=btype, order=order, cut=cut: (
                    signal.sosfilt(
                        signal.butter(order, cut, btype, fs=FS, output="sos"), x, axis=0
                    ),
                    t,
                )
            ),
        )
        for btype, order, cut in [
            ("lowpass", 4, 40.0),
            ("highpass", 4, 20.0),
            ("bandpass", 3, (20.0, 200.0)),
            ("bandstop", 2, (45.0, 55.0)),
            ("lowpass", 10, 300.0),
            ("highpass", 1, 5.0),
        ]
    ],
    ("rectify", {"kind": "rectify"}, lambda x, t: (np.abs(x), t)),
    (
        "rms-boxcar",
        {"kind": "rms", "window_s": 0.05},
        lambda x, t: (np.sqrt(_fir(np.full(50, 1 / 50), x**2)), t),
    ),
    (
        "rms-gaussian",
        {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
        lambda x, t: (np.sqrt(_fir(_gauss_taps(0.01, FS), x**2)), t),
    ),
    (
        "smooth-boxcar-long",  # 700 taps: more than one Toeplitz block
        {"kind": "smooth", "window_s": 0.7},
        lambda x, t: (_fir(np.full(700, 1 / 700), x), t),
    ),
    (
        "smooth-gaussian",
        {"kind": "smooth", "shape": "gaussian", "window_s": 0.03},
        lambda x, t: (_fir(_gauss_taps(0.005, FS), x), t),
    ),
    (
        "decimate-10",
        {"kind": "decimate", "factor": 10},
        lambda x, t: (signal.sosfilt(_aa(10, FS), x, axis=0)[9::10], t[9::10]),
    ),
    (
        "decimate-7-raw",
        {"kind": "decimate", "factor": 7, "antialias": False},
        lambda x, t: (x[6::7], t[6::7]),
    ),
    ("decimate-1", {"kind": "decimate", "factor": 1}, lambda x, t: (x, t)),
    (
        "bin-sum-20",
        {"kind": "bin", "factor": 20},
        lambda x, t: (x[: len(x) // 20 * 20].reshape(-1, 20, N_CH).sum(axis=1), t[19::20]),
    ),
    (
        "bin-mean-7",
        {"kind": "bin", "factor": 7, "reduce": "mean"},
        lambda x, t: (x[: len(x) // 7 * 7].reshape(-1, 7, N_CH).mean(axis=1), t[6::7]),
    ),
    ("bin-1", {"kind": "bin", "factor": 1}, lambda x, t: (x, t)),
    (
        "standardize",
        {"kind": "standardize", "mean": [0, 5, 10, 15, 20], "std": [20, 21, 22, 23, 24.5]},
        lambda x, t: ((x - np.arange(5) * 5.0) / np.array([20, 21, 22, 23, 24.5]), t),
    ),
    ("select", {"kind": "select", "channels": [4, 0, 2]}, lambda x, t: (x[:, [4, 0, 2]], t)),
    (
        "grid",
        {"kind": "grid", "shape": [2, 3], "order": [4, 3, -1, 0, 1, 2]},
        lambda x, t: (
            np.column_stack([x[:, 4], x[:, 3], 0 * x[:, 0], x[:, 0], x[:, 1], x[:, 2]]),
            t,
        ),
    ),
    (
        "clip",
        {"kind": "clip", "min_value": -25.0, "max_value": 40.0},
        lambda x, t: (np.clip(x, -25, 40), t),
    ),
    ("car", {"kind": "car"}, lambda x, t: (_car(x, [[0, 1, 2, 3, 4]]), t)),
    (
        "car-groups-exclude",
        {"kind": "car", "groups": [[0, 1, 2], [3, 4]], "exclude": [2]},
        lambda x, t: (np.column_stack([_car(x, [[0, 1], [3, 4]])[:, :2], x[:, 2],
                                       _car(x, [[3, 4]])[:, 3:]]), t),
    ),
    (
        "crossings-neg",  # 20 samples per bin
        {"kind": "crossings", "threshold": -1.5, "noise_rms": RMS.tolist(), "bin_s": 0.02},
        lambda x, t: _bins(_crossings(x, -1.5 * RMS), t, 20),
    ),
    (
        "crossings-pos-scalar",
        {"kind": "crossings", "threshold": 2.0, "noise_rms": 20.0, "bin_s": 0.007},
        lambda x, t: _bins(_crossings(x, np.full(N_CH, 40.0)), t, 7),
    ),
    (
        "sbp-square",
        {"kind": "sbp", "bin_s": 0.02},
        lambda x, t: _bins(x**2, t, 20, mean=True),
    ),
    (
        "sbp-abs-1",
        {"kind": "sbp", "bin_s": 0.001, "measure": "abs"},
        lambda x, t: (np.abs(x), t),
    ),
    (
        "crossings_sbp",
        {"kind": "crossings_sbp", "threshold": -1.5, "noise_rms": RMS.tolist(), "bin_s": 0.013},
        lambda x, t: (np.hstack([_bins(_crossings(x, -1.5 * RMS), t, 13)[0],
                                 _bins(x**2, t, 13, mean=True)[0]]), t[12::13]),
    ),
    ("sqrt", {"kind": "sqrt"}, lambda x, t: (np.sqrt(np.maximum(x, 0.0)), t)),
    (
        "td",
        {"kind": "td", "window_s": 0.05, "threshold": 1.0, "features": ["mav", "wl", "zc", "ssc", "rms"]},
        lambda x, t: (td_features(x, int(round(0.05 * FS)), 1.0, TD_FEATURES, zero_history=True), t),
    ),
]
IDS = [c[0] for c in CASES]
KINDS = {c[1]["kind"] for c in CASES}

# A realistic EMG chain (seed 000): notch, high-pass, Gaussian RMS, 2 kHz → 100 Hz, z-score.
EMG_FS = 2000.0
EMG_CHAIN = [
    {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45, 55]},
    {"kind": "butter", "btype": "highpass", "order": 4, "cutoff_hz": 20},
    {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
    {"kind": "decimate", "factor": 20},
    {"kind": "standardize", "mean": [1.0, 2.0, 3.0, 4.0, 5.0], "std": [3.0, 4.0, 5.0, 6.0, 7.0]},
]


def _emg_offline(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = signal.sosfilt(signal.butter(2, [45, 55], "bandstop", fs=EMG_FS, output="sos"), x, axis=0)
    y = signal.sosfilt(signal.butter(4, 20, "highpass", fs=EMG_FS, output="sos"), y, axis=0)
    y = np.sqrt(_fir(_gauss_taps(0.01, EMG_FS), y**2))
    y = signal.sosfilt(_aa(20, EMG_FS), y, axis=0)[19::20]
    return (y - np.arange(1.0, 6.0)) / np.arange(3.0, 8.0), t[19::20]


def _stream(step: Any, x: np.ndarray, t: np.ndarray, sizes: list[int]) -> tuple[Any, Any]:
    """Feed x in chunks of the given sizes (then the rest) and concatenate the outputs."""
    ys, ts, i = [], [], 0
    for size in [*sizes, len(x)]:
        y, to = step(x[i : i + size], t[i : i + size])
        ys.append(y)
        ts.append(to)
        i = min(i + size, len(x))
    return np.concatenate(ys), np.concatenate(ts)


def _random_sizes(seed: int, total: int) -> list[int]:
    """Chunk sizes mixing 0, 1, small and large chunks that cover about ``total`` samples."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = [0, 1, 1, 0, 2]
    while sum(sizes) < total - 1100:
        pick = rng.integers(4)
        sizes.append(
            int([0, 1, rng.integers(2, 40), rng.integers(40, 1100)][pick])  # type: ignore[index]
        )
    return sizes


def test_cases_cover_every_kind() -> None:
    from rtdecode.dsp.chain import STAGE_TYPES

    assert set(STAGE_TYPES) == KINDS


@pytest.mark.parametrize(("name", "spec", "reference"), CASES, ids=IDS)
def test_stage_matches_offline_and_random_chunking(
    recording: tuple[np.ndarray, np.ndarray], name: str, spec: dict[str, Any], reference: Any
) -> None:
    x, t = recording
    stage = build_chain([spec], FS, N_CH).stages[0]
    y_once, t_once = stage.step(x, t)
    assert y_once.dtype == np.float64 and t_once.dtype == np.float64
    assert y_once.shape == (len(t_once), stage.n_out)

    y_ref, t_ref = reference(x, t)
    np.testing.assert_allclose(y_once, y_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(t_once, t_ref)

    for seed in (1, 2, 3):
        stage.reset()
        y, t_out = _stream(stage.step, x, t, _random_sizes(seed, len(x)))
        np.testing.assert_allclose(y, y_once, rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(t_out, t_once)


@pytest.mark.parametrize(("name", "spec", "reference"), CASES, ids=IDS)
def test_stage_one_sample_at_a_time(
    recording: tuple[np.ndarray, np.ndarray], name: str, spec: dict[str, Any], reference: Any
) -> None:
    x, t = recording[0][:400], recording[1][:400]
    stage = build_chain([spec], FS, N_CH).stages[0]
    y_once, t_once = stage.step(x, t)
    stage.reset()
    y, t_out = _stream(stage.step, x, t, [1] * len(x))
    np.testing.assert_allclose(y, y_once, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(t_out, t_once)


@pytest.mark.parametrize(("name", "spec", "reference"), CASES, ids=IDS)
def test_empty_chunks_keep_shape_and_state(
    recording: tuple[np.ndarray, np.ndarray], name: str, spec: dict[str, Any], reference: Any
) -> None:
    x, t = recording
    stage = build_chain([spec], FS, N_CH).stages[0]
    y0, t0 = stage.step(x[:0], t[:0])
    assert y0.shape == (0, stage.n_out) and y0.dtype == np.float64
    assert t0.shape == (0,) and t0.dtype == np.float64
    y_once, _ = stage.step(x, t)
    stage.reset()
    stage.step(x[:0], t[:0])
    y_a, _ = stage.step(x[:1234], t[:1234])
    stage.step(np.empty((0, N_CH)), np.empty(0))
    y_b, _ = stage.step(x[1234:], t[1234:])
    np.testing.assert_allclose(np.concatenate([y_a, y_b]), y_once, rtol=RTOL, atol=ATOL)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(CASES),
    sizes=st.lists(st.integers(min_value=0, max_value=600), max_size=25),
)
def test_stage_hypothesis_chunking(case: Any, sizes: list[int]) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1500, N_CH)) * 10.0
    t = np.arange(1500) / FS
    chain = build_chain([case[1]], FS, N_CH)
    y_once, t_once = chain.stages[0].step(x, t)
    chain.reset()
    y, t_out = _stream(chain.stages[0].step, x, t, sizes)
    np.testing.assert_allclose(y, y_once, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(t_out, t_once)


@pytest.fixture(scope="module")
def emg() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(99)
    n = 4000
    t = 50.0 + np.arange(n) / EMG_FS
    bursts = 1.0 + (np.sin(2 * np.pi * 1.5 * t) > 0)[:, None] * np.arange(1, N_CH + 1)
    x = rng.standard_normal((n, N_CH)) * bursts + 2.0 * np.sin(2 * np.pi * 50.0 * t)[:, None]
    return x, t


def test_emg_chain_matches_offline_scipy(emg: tuple[np.ndarray, np.ndarray]) -> None:
    x, t = emg
    chain = build_chain(EMG_CHAIN, EMG_FS, N_CH)
    assert chain.rate_out_hz == 100.0 and chain.n_out == N_CH
    y, t_out = chain.process(x.astype(np.float32), t)
    assert y.dtype == np.float32 and t_out.dtype == np.float64
    y_ref, t_ref = _emg_offline(x.astype(np.float32).astype(np.float64), t)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(t_out, t_ref)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(min_value=0, max_value=700), max_size=40))
def test_emg_chain_random_chunking(sizes: list[int]) -> None:
    rng = np.random.default_rng(5)
    n = 4000
    x = rng.standard_normal((n, N_CH)) * 100.0
    t = np.arange(n) / EMG_FS
    chain = build_chain(EMG_CHAIN, EMG_FS, N_CH)
    y_once, t_once = chain.process(x, t)
    chain.reset()
    y, t_out = _stream(chain.process, x, t, sizes)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, y_once, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(t_out, t_once)


def test_chain_of_every_kind_random_chunking(recording: tuple[np.ndarray, np.ndarray]) -> None:
    x, t = recording
    specs = [
        {"kind": "scale", "gain": 0.5, "offset": [1, 2, 3, 4, 5]},
        {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45, 55]},
        {"kind": "select", "channels": [0, 1, 2, 3]},
        {"kind": "smooth", "window_s": 0.004},
        {"kind": "rectify"},
        {"kind": "bin", "factor": 2, "reduce": "mean"},
        {"kind": "rms", "window_s": 0.02},
        {"kind": "decimate", "factor": 5},
        {"kind": "butter", "btype": "lowpass", "order": 2, "cutoff_hz": 5},
        {"kind": "standardize", "mean": 1.0, "std": 2.0},
        {"kind": "grid", "shape": [2, 2], "order": [3, 2, 1, 0]},
        {"kind": "clip", "min_value": -3, "max_value": 3},
        {"kind": "sqrt"},
    ]
    chain = build_chain(specs, FS, N_CH)
    assert chain.rate_out_hz == pytest.approx(100.0)
    assert chain.grid_shape == (2, 2)
    y_once, t_once = chain.process(x, t)
    np.testing.assert_array_equal(t_once, t[9::10])
    for seed in (11, 12):
        chain.reset()
        y, t_out = _stream(chain.process, x, t, _random_sizes(seed, len(x)))
        np.testing.assert_allclose(y, y_once, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(t_out, t_once)


def test_reset_restarts_from_zero_state(recording: tuple[np.ndarray, np.ndarray]) -> None:
    x, t = recording
    chain = build_chain(EMG_CHAIN, FS, N_CH)
    first, t1 = chain.process(x[:777], t[:777])
    chain.process(x[777:1500], t[777:1500])
    chain.reset()
    again, t2 = chain.process(x[:777], t[:777])
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(t1, t2)


def test_decimate_keeps_global_phase() -> None:
    x = np.arange(50, dtype=np.float64)[:, None] * np.ones((1, 2))
    t = np.arange(50) * 0.5
    stage = build_chain([{"kind": "decimate", "factor": 4, "antialias": False}], 2.0, 2).stages[0]
    y, t_out = _stream(stage.step, x, t, [3, 0, 1, 5, 2, 2, 7])
    np.testing.assert_array_equal(y[:, 0], np.arange(3, 50, 4))  # k*factor + factor - 1
    np.testing.assert_array_equal(t_out, t[3::4])
    assert stage.rate_out_hz == 0.5


def test_bin_counts_spikes_into_20ms_bins() -> None:
    rng = np.random.default_rng(3)
    spikes = (rng.random((2000, 3)) < 0.05).astype(np.float64)  # 1 kHz spike trains
    t = np.arange(2000) / 1000.0
    stage = build_chain([{"kind": "bin", "factor": 20}], 1000.0, 3).stages[0]
    assert stage.rate_out_hz == 50.0
    y, t_out = _stream(stage.step, spikes, t, [13, 0, 1, 19, 20, 21, 300])
    np.testing.assert_array_equal(y, spikes.reshape(100, 20, 3).sum(axis=1))
    np.testing.assert_array_equal(t_out, t[19::20])


@pytest.mark.parametrize(
    ("spec", "delay_s"),
    [
        ({"kind": "smooth", "window_s": 0.051}, 0.025),
        ({"kind": "smooth", "shape": "gaussian", "sigma_s": 0.01}, 0.03),
        ({"kind": "butter", "btype": "lowpass", "order": 4, "cutoff_hz": 10.0}, None),
        ({"kind": "decimate", "factor": 10}, None),
    ],
)
def test_declared_delay_matches_ramp_lag(spec: dict[str, Any], delay_s: float | None) -> None:
    """A slow ramp comes out shifted by the declared (DC / symmetric-window) delay."""
    n = 6000
    t = np.arange(n) / FS
    stage = build_chain([spec], FS, 1).stages[0]
    if delay_s is not None:
        assert stage.delay_s == pytest.approx(delay_s)
    y, t_out = stage.step(t[:, None].copy(), t)
    lag = t_out[-100:] - y[-100:, 0]
    np.testing.assert_allclose(lag, stage.delay_s, rtol=1e-3)


def test_chain_delay_is_sum_of_stages() -> None:
    chain = build_chain(EMG_CHAIN, EMG_FS, N_CH)
    assert chain.delay_s == pytest.approx(sum(s.delay_s for s in chain.stages))
    assert chain.stages[2].delay_s == pytest.approx(0.03)  # Gaussian RMS: 3 sigma


def test_empty_chain_is_identity_float32(recording: tuple[np.ndarray, np.ndarray]) -> None:
    x, t = recording
    chain = build_chain([], FS, N_CH)
    assert isinstance(chain, Chain) and len(chain) == 0
    assert (chain.rate_in_hz, chain.rate_out_hz, chain.n_in, chain.n_out) == (FS, FS, 5, 5)
    assert chain.delay_s == 0.0 and chain.grid_shape is None and chain.specs == []
    y, t_out = chain.process(x, t)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x.astype(np.float32))
    np.testing.assert_array_equal(t_out, t)
    y0, t0 = chain.process(x[:0], t[:0])
    assert y0.shape == (0, N_CH) and y0.dtype == np.float32 and t0.shape == (0,)


def test_chain_zero_chunk_shapes() -> None:
    chain = build_chain(EMG_CHAIN + [{"kind": "select", "channels": [1, 2]}], EMG_FS, N_CH)
    y, t_out = chain.process(np.empty((0, N_CH), np.float32), np.empty(0))
    assert y.shape == (0, 2) and y.dtype == np.float32
    assert t_out.shape == (0,) and t_out.dtype == np.float64
