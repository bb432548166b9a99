"""Simulated cortex (seed 002): streaming-consistent, realistic rates, informative tuning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtdecode.errors import ConfigError
from rtdecode.sources.simulator import CortexSimulator, simulate_cortex_recording


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=12),
       seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_chunked_generation_equals_one_call(sizes: list[int], seed: int) -> None:
    total = sum(sizes)
    spikes, kin = CortexSimulator(n_neurons=20, seed=seed).generate(total)
    sim = CortexSimulator(n_neurons=20, seed=seed)
    parts = [sim.generate(n) for n in sizes]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), kin)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), spikes)
    assert sim.n_generated == total


def test_reset_replays_and_seeds_differ() -> None:
    sim = CortexSimulator(seed=5)
    first = sim.generate(500)
    sim.reset()
    again = sim.generate(500)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    other = CortexSimulator(seed=6).generate(500)
    assert not np.array_equal(other[1], first[1])


@pytest.fixture(scope="module")
def long_run() -> tuple[CortexSimulator, np.ndarray, np.ndarray]:
    sim = CortexSimulator(n_neurons=50, rate_hz=1000.0, seed=0)
    spikes, kin = sim.generate(120_000)  # 2 min
    return sim, spikes, kin


def test_output_types_and_ranges(long_run: tuple[CortexSimulator, np.ndarray,
                                                 np.ndarray]) -> None:
    sim, spikes, kin = long_run
    assert spikes.dtype == np.float32 and spikes.shape == (120_000, 50)
    assert kin.dtype == np.float32 and kin.shape == (120_000, 4)
    assert (spikes >= 0).all() and np.array_equal(spikes, np.round(spikes))
    # velocity: ~8 cm/s per axis, rarely beyond ±20 cm/s; position bounded by the leak
    v = kin[:, 2:]
    assert 4.0 < float(v.std()) < 12.0
    assert np.mean(np.abs(v) > 20.0) < 0.05
    assert np.abs(kin[:, :2]).max() < 50.0
    # position integrates velocity with the weak leak: p[k] = a p[k-1] + dt v[k]
    p = kin[:, :2].astype(np.float64)
    a = np.exp(-1.0 / (sim.rate_hz * sim.leak_tau_s))
    np.testing.assert_allclose((p[1:] - a * p[:-1]) * sim.rate_hz, v[1:], atol=0.05)
    # firing rates: ~10 Hz baseline, 40-60 Hz peak, mean rates in a realistic range
    rates = spikes.mean(axis=0) * sim.rate_hz
    assert 3.0 < rates.min() and rates.max() < 30.0
    assert 5.0 <= sim.baseline_hz.min() and sim.baseline_hz.max() <= 15.0
    peak = sim.baseline_hz + sim.modulation_hz
    assert 35.0 <= peak.min() and peak.max() <= 65.0
    np.testing.assert_allclose(np.linalg.norm(sim.preferred_directions, axis=1), 1.0)


def test_linear_decoder_recovers_velocity(long_run: tuple[CortexSimulator, np.ndarray,
                                                          np.ndarray]) -> None:
    sim, spikes, kin = long_run
    win = int(0.05 * sim.rate_hz)  # 50-ms causal boxcar of spike counts
    c = np.cumsum(spikes, axis=0, dtype=np.float64)
    smooth = c.copy()
    smooth[win:] = c[win:] - c[:-win]
    X = smooth[win::10]  # every 10 ms
    Y = kin[win::10, 2:].astype(np.float64)
    A = np.column_stack([X, np.ones(len(X))])
    n_train = int(0.7 * len(A))
    W, *_ = np.linalg.lstsq(A[:n_train], Y[:n_train], rcond=None)
    pred = A[n_train:] @ W
    resid = ((Y[n_train:] - pred) ** 2).sum(axis=0)
    total = ((Y[n_train:] - Y[n_train:].mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1.0 - resid / total
    assert (r2 > 0.5).all(), r2


def test_simulate_cortex_recording() -> None:
    rec = simulate_cortex_recording(2.0, seed=3, n_neurons=12, rate_hz=500.0)
    assert rec.x.shape == (1000, 12) and rec.fs == 500.0 and rec.y.shape == (1000, 4)
    assert rec.target_names == ["px", "py", "vx", "vy"]
    assert rec.meta["units"]["vx"] == "cm/s" and rec.meta["units"]["px"] == "cm"
    assert len(rec.meta["tuning"]["preferred_angles_rad"]) == 12
    spikes, kin = CortexSimulator(n_neurons=12, rate_hz=500.0, seed=3).generate(1000)
    np.testing.assert_array_equal(rec.x, spikes)
    np.testing.assert_array_equal(rec.y, kin)


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError):
        CortexSimulator(n_neurons=0)
    with pytest.raises(ConfigError):
        CortexSimulator(rate_hz=1.0, cutoff_hz=0.8)


def test_subject_seed_fixes_the_neurons_not_the_trajectory() -> None:
    a = CortexSimulator(n_neurons=10, seed=1, subject_seed=7)
    b = CortexSimulator(n_neurons=10, seed=2, subject_seed=7)
    c = CortexSimulator(n_neurons=10, seed=7)
    np.testing.assert_array_equal(a.preferred_angles_rad, b.preferred_angles_rad)
    np.testing.assert_array_equal(a.preferred_angles_rad, c.preferred_angles_rad)
    assert not np.array_equal(a.generate(500)[1], b.generate(500)[1])
