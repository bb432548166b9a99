"""The live path's small-chunk code (SosState matrix map, CausalFir ring) equals one offline pass."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtdecode.dsp.envelope import CausalFir
from rtdecode.dsp.filters import SMALL_CHUNK, WIDE_CHANNELS, SosState


@pytest.mark.parametrize("sos", [
    signal.butter(8, 41.0, fs=2048.0, output="sos"),                        # anti-alias low-pass
    signal.butter(4, [20.0, 500.0], btype="bandpass", fs=2048.0, output="sos"),
    signal.butter(4, 2.0, fs=2048.0, output="sos"),                         # poles near z = 1
    signal.butter(2, 20.0, btype="highpass", fs=1000.0, output="sos"),
], ids=["lowpass8", "bandpass4", "lowpass-2Hz", "highpass2"])
@pytest.mark.parametrize("n_ch", [WIDE_CHANNELS - 1, WIDE_CHANNELS])  # large chunks: sosfilt / blocks
def test_random_small_and_large_chunks_equal_one_sosfilt_pass(sos: np.ndarray, n_ch: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 100, (6000, n_ch))
    ref = signal.sosfilt(sos, x, axis=0)
    f = SosState(sos, n_ch)
    out, i = [], 0
    while i < len(x):
        n = int(rng.choice([1, 2, 3, SMALL_CHUNK, SMALL_CHUNK + 1, 100]))
        out.append(f.step(x[i:i + n]))
        i += n
    got = np.concatenate(out)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_outputs_are_not_overwritten_by_later_calls_and_reset_zeroes_state() -> None:
    sos = signal.butter(4, 50.0, fs=1000.0, output="sos")
    f = SosState(sos, 3)
    x = np.ones((2, 3))
    first = f.step(x)
    kept = first.copy()
    f.step(x * 5)
    np.testing.assert_array_equal(first, kept)
    f.reset()
    np.testing.assert_allclose(f.step(x), kept)


@pytest.mark.parametrize("n_taps", [1, 5, 123, 700])
def test_causal_fir_ring_wraps_and_equals_convolution(n_taps: int) -> None:
    rng = np.random.default_rng(n_taps)
    taps = rng.random(n_taps)
    x = rng.normal(size=(8000, 3))
    ref = np.stack([np.convolve(x[:, c], taps)[: len(x)] for c in range(3)], axis=1)
    f = CausalFir(taps, 3)
    out, i = [], 0
    while i < len(x):  # many small calls wrap the ring several times; long calls reset it
        n = int(rng.choice([1, 2, 3, 17, f.block, f.block + 1, 900]))
        out.append(f.step(x[i:i + n]))
        i += n
    np.testing.assert_allclose(np.concatenate(out), ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    f.reset()
    np.testing.assert_allclose(f.step(x[:4]), ref[:4], rtol=0, atol=1e-9 * np.abs(ref).max())
