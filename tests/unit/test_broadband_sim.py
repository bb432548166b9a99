"""The broadband simulator: same output for a seed whatever the chunking, the cortex model's
spikes and kinematics inside it, subject vs session seeds, and the front end finding its units;
its LSL outlets carry exactly what it generates."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError
from rtdecode.ibci.frontend import frontend_chain
from rtdecode.ibci.thresholds import noise_rms
from rtdecode.lsl import pylsl
from rtdecode.sources.broadband import BroadbandSimulator, simulate_broadband_recording, simulator_blocks
from rtdecode.sources.simulator import CortexSimulator, SimulatorOutlets

FS = 30000.0


def _chunked(sim: BroadbandSimulator, total: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ks, done = [], [], 0
    while done < total:
        n = int(min(rng.choice([0, 1, 2, 29, 30, 31, 599, 2000]), total - done))
        x, k = sim.generate(n)
        assert x.shape == (n, sim.n_channels) and x.dtype == np.float32
        xs.append(x)
        ks.append(k)
        done += n
    return np.concatenate(xs), np.concatenate(ks)


def test_output_does_not_depend_on_chunking() -> None:
    sim = BroadbandSimulator(8, FS, seed=3)
    x, kin = sim.generate(9000)
    for seed in (1, 2):
        sim.reset()
        xc, kc = _chunked(sim, 9000, seed)
        np.testing.assert_array_equal(xc, x)
        np.testing.assert_array_equal(kc, kin)
    assert kin.shape == (300, 4) and sim.n_generated == 9000


def test_spikes_and_kinematics_are_the_cortex_model_at_the_block_rate() -> None:
    sim = BroadbandSimulator(6, FS, seed=4, subject_seed=9)
    _, kin = sim.generate(int(FS))
    ref = CortexSimulator(6, 1000.0, seed=4, subject_seed=9)
    counts, ref_kin = ref.generate(1000)
    np.testing.assert_array_equal(kin, ref_kin)
    np.testing.assert_array_equal(sim.cortex.preferred_angles_rad, ref.preferred_angles_rad)
    assert counts.sum() > 50  # the units fire


def test_subject_seed_fixes_the_units_and_session_seed_the_rest() -> None:
    a = BroadbandSimulator(5, FS, seed=1, subject_seed=7)
    b = BroadbandSimulator(5, FS, seed=2, subject_seed=7)
    c = BroadbandSimulator(5, FS, seed=1, subject_seed=8)
    np.testing.assert_array_equal(a.templates, b.templates)
    np.testing.assert_array_equal(a.amplitudes_uv, b.amplitudes_uv)
    assert not np.array_equal(a.templates, c.templates)
    assert not np.array_equal(a.generate(300)[0], b.generate(300)[0])
    assert (a.templates.min(axis=1) == pytest.approx(-a.amplitudes_uv, rel=1e-5))


def test_front_end_finds_the_big_units() -> None:
    """Crossings count the spikes of units far above the threshold; CAR lowers the noise RMS
    (the common mode), which stays above the electrode noise (the units' spikes add to it)."""
    sim = BroadbandSimulator(16, FS, seed=5, amplitude_range_uv=(20.0, 150.0), common_uv=10.0)
    counts = []
    sim.cortex.generate = _recording(sim.cortex.generate, counts)  # type: ignore[method-assign]
    blocks = list(simulator_blocks(sim, 4.0))
    x = np.concatenate([b[0] for b in blocks])
    rms = noise_rms(iter([x]), frontend_chain(1.0)[:2], FS, 16)
    without_car = noise_rms(iter([x]), frontend_chain(1.0)[1:2], FS, 16)
    assert (rms < without_car).all() and (rms > sim.noise_uv * 0.95).all()
    y, _ = build_chain(frontend_chain(rms.tolist(), bin_s=1.0), FS, 16).process(x, np.arange(len(x)) / FS)
    spikes = np.concatenate(counts)[: 4000].sum(axis=0)
    detected = y[:, :16].sum(axis=0)
    big = sim.amplitudes_uv > 6 * rms  # far above -4.5 × RMS
    assert big.sum() >= 3 and spikes[big].min() >= 15
    # a few extra crossings: noise peaks past -4.5 RMS, a waveform's after-ring in the high-pass
    assert detected[big].sum() == pytest.approx(spikes[big].sum(), rel=0.05)
    assert np.corrcoef(detected[big], spikes[big])[0, 1] > 0.95


def _recording(generate, out: list):  # noqa: ANN001, ANN202
    def wrapped(n: int):  # noqa: ANN202
        counts, kin = generate(n)
        out.append(counts)
        return counts, kin
    return wrapped


def test_recording_and_bad_parameters() -> None:
    rec = simulate_broadband_recording(0.1, n_channels=3, seed=2)
    assert rec.x.shape == (3000, 3) and rec.y is not None and rec.y.shape == (3000, 4)
    np.testing.assert_array_equal(rec.y[:30], np.repeat(rec.y[29:30], 30, axis=0))
    assert rec.meta["dataset"] == "simulated_broadband" and rec.fs == FS
    with pytest.raises(ConfigError, match="block_s"):
        BroadbandSimulator(2, 1000.0, block_s=0.0015)
    with pytest.raises(ConfigError, match="noise_uv"):
        BroadbandSimulator(2, FS, noise_uv=-1.0)
    with pytest.raises(ConfigError, match="n_channels"):
        BroadbandSimulator(0, FS)


def test_outlets_stream_exactly_what_it_generates(unique_name: str) -> None:
    """Real LSL: data samples, their timestamps, and one kinematics row per millisecond stamped
    with its block's last sample."""
    n = 3000
    outlets = SimulatorOutlets(BroadbandSimulator(8, FS, seed=6), name=unique_name).open()
    try:
        data = pylsl.StreamInlet(pylsl.resolve_byprop("name", unique_name, timeout=10)[0],
                                 max_buflen=10)
        kin = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{unique_name}-kinematics", timeout=10)[0],
                                max_buflen=10)
        data.open_stream(10)
        kin.open_stream(10)
        run = threading.Thread(target=outlets.run, kwargs={"duration_s": n / FS})
        run.start()
        x, tx = _pull(data, n)
        k, tk = _pull(kin, n // 30)
        run.join(30)
    finally:
        outlets.close()
    ref_x, ref_k = BroadbandSimulator(8, FS, seed=6).generate(n)
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(k, ref_k)
    np.testing.assert_allclose(np.diff(tx), 1 / FS, atol=1e-9)
    np.testing.assert_allclose(tk, tx[29::30], atol=1e-9)
    assert data.info().type() == "Broadband" and kin.info().nominal_srate() == 1000.0


def _pull(inlet: pylsl.StreamInlet, n: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ts, got = [], [], 0
    for _ in range(400):
        x, t = inlet.pull_chunk(timeout=0.1)
        if t:
            xs.append(np.asarray(x, np.float32))
            ts.extend(t)
            got += len(t)
        if got >= n:
            break
    assert got == n, f"got {got} of {n} samples"
    return np.concatenate(xs), np.asarray(ts)
