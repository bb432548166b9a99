"""The iBCI front end's stages beyond streaming parity (tests/unit/test_dsp_parity.py): what they
detect on broadband data with known spikes, what the CAR removes, the fused stage equal to
its parts, and errors that name the field."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy import signal

from rtdecode.dsp import build_chain, parse_chain
from rtdecode.errors import ConfigError, StageError
from rtdecode.ibci.frontend import SPIKE_BAND, frontend_chain

FS = 30000.0


def _spiky(n_ch: int = 24, seconds: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """White noise (RMS 3 µV) + a large common-mode signal + spikes (a Ricker wavelet, trough
    -100 µV: its spectrum lies above the 250 Hz high-pass, which leaves no ringing lobe to cross
    the threshold again) at known samples on every channel, never two at once on different
    channels (CAR spreads 1/C of each spike over the others); returns x, t and each channel's
    spike samples."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = rng.normal(0.0, 3.0, (n, n_ch))
    x += rng.normal(0.0, 40.0, (n, 1))  # common to every electrode: CAR removes it
    k = (np.arange(40) - 15.0) / 3.0
    wave = -100.0 * (1.0 - k**2) * np.exp(-0.5 * k**2)
    spikes = []
    for c in range(n_ch):
        grid = np.arange(100 + 40 * c, n - 100, 40 * n_ch)
        at = np.sort(rng.choice(grid, size=min(10 + c // 2, grid.size), replace=False))
        for i in at:
            x[i : i + 40, c] += wave
        spikes.append(at)
    return x, np.arange(n) / FS, spikes


def test_car_removes_the_common_mode_and_finds_every_spike() -> None:
    x, t, spikes = _spiky()
    c = x.shape[1]
    # -6 × 3 µV: Gaussian noise alone crosses it about once in 10^9 samples (at -4.5 σ, 24
    # channels of it would add ~2 crossings per second)
    with_car = build_chain(frontend_chain(3.0, threshold=-6.0, bin_s=0.1), FS, c)
    without = build_chain(frontend_chain(3.0, threshold=-6.0, bin_s=0.1)[1:], FS, c)
    y, t_out = with_car.process(x, t)
    assert y.shape == (10, 2 * c) and with_car.rate_out_hz == 10.0
    np.testing.assert_array_equal(t_out, t[2999::3000])
    # every spike crosses once, the noise (after CAR ~3 µV RMS) never
    n_spikes = np.array([len(s) for s in spikes])
    np.testing.assert_array_equal(y[:, :c].sum(axis=0), n_spikes)
    counts_no_car = without.process(x, t)[0][:, :c].sum(axis=0)
    assert (counts_no_car > 2 * n_spikes).all()  # the common noise crosses too
    # spike-band power: channels with more spikes carry more power
    assert np.corrcoef(y[:, c:].sum(axis=0), n_spikes)[0, 1] > 0.9


def test_fused_stage_equals_the_separate_stages() -> None:
    x, t, _ = _spiky(6, seed=1)
    band = build_chain([{"kind": "car"}, SPIKE_BAND], FS, 6).process(x, t)[0].astype(np.float64)
    tx = {"threshold": -4.5, "noise_rms": [3.0, 3.5, 4.0, 3.0, 2.0, 3.0], "bin_s": 0.02}
    fused = build_chain([{"kind": "crossings_sbp", "measure": "abs", **tx}], FS, 6).stages[0]
    cross = build_chain([{"kind": "crossings", **tx}], FS, 6).stages[0]
    power = build_chain([{"kind": "sbp", "measure": "abs", "bin_s": 0.02}], FS, 6).stages[0]
    y, t_out = fused.step(band, t)
    yc, tc = cross.step(band, t)
    yp, tp = power.step(band, t)
    assert yc.sum() > 20  # crossings happen
    np.testing.assert_array_equal(y[:, :6], yc)
    np.testing.assert_allclose(y[:, 6:], yp, rtol=1e-12)
    np.testing.assert_array_equal(t_out, tc)
    np.testing.assert_array_equal(t_out, tp)


def test_declared_delay_and_memory() -> None:
    chain = build_chain(frontend_chain(5.0), FS, 4)
    car, butter, feats = chain.stages
    assert car.delay_s == 0.0 and car.memory_s == 0.0
    assert feats.delay_s == pytest.approx(599 / 2 / FS) and feats.memory_s == pytest.approx(601 / FS)
    sos = signal.butter(4, 250.0, btype="highpass", fs=FS, output="sos")
    np.testing.assert_allclose(butter.sos, sos)
    assert 0.0 < butter.delay_s < 1e-3 and 5e-3 < butter.memory_s < 0.1
    assert chain.delay_s == pytest.approx(sum(s.delay_s for s in chain.stages))


def test_positive_threshold_counts_upward_crossings() -> None:
    x, t, spikes = _spiky(seed=2)
    c = x.shape[1]
    up_spec = [{"kind": "crossings", "threshold": 6.0, "noise_rms": 3.0, "bin_s": 1.0}]
    up = build_chain(up_spec, FS, c).process(-x, t)[0]  # spikes upside down, common mode: many
    band = build_chain([{"kind": "car"}, SPIKE_BAND], FS, c).process(-x, t)[0]
    up_band = build_chain(up_spec, FS, c).process(band, t)[0]
    np.testing.assert_array_equal(up_band[0], [len(s) for s in spikes])
    assert (up[0] > up_band[0]).all()


def test_front_end_chain_round_trips_through_json() -> None:
    specs = frontend_chain([5.0, 6.0, 7.0], exclude=[2], bin_s=0.01, measure="abs")
    chain = build_chain(specs, FS, 3)
    again = build_chain(json.loads(json.dumps(chain.specs)), FS, 3)
    assert again.specs == chain.specs and again.n_out == 6 and again.rate_out_hz == 100.0
    x, t, _ = _spiky(3, 0.1)
    np.testing.assert_array_equal(chain.process(x, t)[0], again.process(x, t)[0])


@pytest.mark.parametrize(("spec", "words"), [
    ({"kind": "crossings", "threshold": 0.0, "noise_rms": 5.0, "bin_s": 0.02}, ["'threshold'", "non-zero"]),
    ({"kind": "crossings", "threshold": -4.5, "noise_rms": [5.0, 0.0], "bin_s": 0.02},
     ["'noise_rms'", "> 0", "[1]"]),
    ({"kind": "crossings", "threshold": -4.5, "noise_rms": [], "bin_s": 0.02}, ["'noise_rms'", "empty"]),
    ({"kind": "crossings", "threshold": -4.5, "bin_s": 0.02}, ["'noise_rms'", "required"]),
    ({"kind": "crossings_sbp", "threshold": -4.5, "noise_rms": 5.0, "bin_s": -1}, ["'bin_s'"]),
    ({"kind": "sbp", "bin_s": 0.02, "measure": "max"}, ["'measure'"]),
    ({"kind": "sbp", "bin_s": 0.02, "threshold": -4.5}, ["unknown field 'threshold'", "bin_s"]),
    ({"kind": "car", "groups": [[0, 1], [1, 2]]}, ["'groups'", "more than one group"]),
    ({"kind": "car", "groups": [[0, 1], []]}, ["'groups'", "non-empty"]),
    ({"kind": "car", "exclude": [-1]}, ["'exclude'"]),
])
def test_invalid_specs_name_the_field(spec: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_chain([spec])
    for word in words:
        assert word in str(info.value), str(info.value)
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize(("specs", "words"), [
    ([{"kind": "sbp", "bin_s": 0.0105}], ["stage 0", "'bin_s'", "10.5 samples", "whole number"]),
    ([{"kind": "sbp", "bin_s": 0.0001}], ["'bin_s'", "0.1 samples"]),
    ([{"kind": "crossings", "threshold": -4.5, "noise_rms": [5.0, 5.0], "bin_s": 0.02}],
     ["'noise_rms'", "2 values", "4 channels"]),
    ([{"kind": "car", "exclude": [7]}], ["'car'", "[7]", "0..3"]),
    ([{"kind": "car", "groups": [[0, 1], [2, 3]], "exclude": [3]}], ["group 1", "at least two"]),
])
def test_build_errors_name_stage_and_field(specs: list[dict[str, Any]], words: list[str]) -> None:
    with pytest.raises(StageError) as info:
        build_chain(specs, 1000.0, 4)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert "Fix:" in str(info.value)
