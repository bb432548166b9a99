"""Spike-band features binned to the decoder's rate: threshold crossings and spike-band power.

The input is the spike-band signal (broadband data after a ``car`` and a ``butter`` band-pass
or high-pass, e.g. 250 Hz – 5 kHz). Per channel and per bin of ``bin_s`` seconds:

* **threshold crossings** — how many samples fall past ``threshold × noise_rms`` (per-channel
  RMS estimated over a calibration period) while their predecessor did not: for a negative
  threshold, ``x[i] < thr`` and ``x[i-1] >= thr``. The sample before the first one is the
  zero of the front zero-padding, which is never past a non-zero threshold.
* **spike-band power** — the mean of x² (or of |x|) over the bin.

Bin k holds input samples ``k·B … k·B + B − 1`` (``B = bin_s × rate``), is emitted by the call
that delivers its last sample and carries that sample's time, as the ``bin`` stage does.
Between calls the stage keeps the previous sample's side of the threshold and the partial
bin's running sums (C numbers each), so any chunking gives the same counts and the same
powers up to rounding (float64; float32 when the stage before computes in float32). One pass
computes both features (``crossings_sbp``); each is
also a stage of its own (``crossings``, ``sbp``).
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.dsp.base import Stage, check_io, empty_output
from rtdecode.dsp.channels import per_channel
from rtdecode.dsp.specs import CrossingsSbpSpec, CrossingsSpec, SbpSpec
from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["CrossingsSbpStage", "CrossingsStage", "SbpStage", "bin_factor"]


def bin_factor(bin_s: float, rate_hz: float) -> int:
    """Samples per bin, ``bin_s × rate_hz``, which must be a whole number >= 1.

    Raises
    ------
    StageError
        If the bin is shorter than a sample or not a whole number of samples.
    """
    exact = bin_s * rate_hz
    factor = int(round(exact))
    if factor < 1 or abs(exact - factor) > 1e-6 * max(factor, 1):
        raise StageError(
            f"field 'bin_s' = {bin_s} s is {exact:.6g} samples at {rate_hz:g} Hz; a bin must "
            "hold a whole number (>= 1) of input samples",
            f"use a multiple of {1.0 / rate_hz:.6g} s (e.g. 0.02 for 20 ms bins at 30 kHz)",
        )
    return factor


class _SpikeBandStage(Stage):
    """Binned crossings and / or power of each channel (see the module docstring)."""

    _name = "spike band"
    _crossings = False
    _power = False

    def __init__(self, spec: CrossingsSpec | SbpSpec | CrossingsSbpSpec, rate_hz: float,
                 n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, self._name)
        self.factor = bin_factor(spec.bin_s, rate)
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = rate
        self.rate_out_hz = rate / self.factor
        self.n_in = n
        self.n_out = n * (int(self._crossings) + int(self._power))
        self.delay_s = (self.factor - 1) / 2.0 / rate
        self.memory_s = (self.factor + 1) / rate  # the bin and the sample before it
        self.dtype = None  # float64 or float32, as the stage before computes
        if isinstance(spec, (CrossingsSpec, CrossingsSbpSpec)):
            #: per-channel threshold, input units
            self.thresholds = spec.threshold * per_channel(spec.noise_rms, n, "noise_rms")
            # compared in the input's dtype (a mixed comparison would upcast every sample)
            self._thr = {np.dtype(d): self.thresholds.astype(d) for d in (np.float64, np.float32)}
            self._past = np.less if spec.threshold < 0 else np.greater
        self._abs = getattr(spec, "measure", "square") == "abs"
        self._prev = np.zeros(n, dtype=bool)  # was the last sample past its threshold?
        self._sums = np.zeros((2, n), dtype=np.float64)  # partial bin: crossings, power
        self._fill = 0  # samples in the partial bin
        # a segment never holds more than one bin: small integer sums are exact and fastest
        self._count_dtype: type = np.uint16 if self.factor <= np.iinfo(np.uint16).max else np.int64

    def _features(self, x: np.ndarray) -> list[tuple[int, np.ndarray, type]]:
        """(row of ``_sums``, per-sample feature (n, C), accumulation dtype) of x float64 or
        float32 (n, C): crossings as uint8 0/1 (row 0), power in x's dtype, summed in float64
        (row 1)."""
        out = []
        if self._crossings:
            past = self._past(x, self._thr[x.dtype])
            cross = np.empty_like(past)
            np.greater(past[:1], self._prev, out=cross[:1])  # past now, not before
            np.greater(past[1:], past[:-1], out=cross[1:])
            np.copyto(self._prev, past[-1])
            out.append((0, cross.view(np.uint8), self._count_dtype))
        if self._power:
            out.append((1, np.abs(x) if self._abs else np.square(x), np.float64))
        return out

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin the features of new samples; see :meth:`Stage.step`.

        Parameters are float64 or float32 (n, C) samples (the previous stage's precision).

        Returns
        -------
        y : float64 (m, n_out)
            Per completed bin: crossing counts (C), then mean power (C), as configured.
        t_out : float64 (m,)
            Time of each completed bin's last sample, s.
        """
        n = x.shape[0]
        f, p = self.factor, self._fill
        n_bins = (p + n) // f
        self._fill = (p + n) % f
        if n_bins == 0:  # the common live case: the chunk lies inside the open bin
            for row, a, dtype in self._features(x):
                # a chunk's power sums in its own dtype (float32: 4x faster than casting each
                # sample to float64; rounding ~n·6e-8 relative), the bin's total in float64
                self._sums[row] += np.add.reduce(a, axis=0, dtype=dtype if row == 0 else a.dtype)
            return empty_output(self.n_out)
        y = np.empty((n_bins, self.n_out), dtype=np.float64)
        head = f - p  # samples that close the open bin
        used = head + (n_bins - 1) * f  # samples in completed bins
        c = self.n_in
        for j, (row, a, dtype) in enumerate(self._features(x)):
            done = y[:, j * c : (j + 1) * c]
            done[0] = np.add.reduce(a[:head], axis=0, dtype=dtype)
            done[0] += self._sums[row]
            if n_bins > 1:
                done[1:] = a[head:used].reshape(n_bins - 1, f, c).sum(axis=1, dtype=dtype)
            self._sums[row] = np.add.reduce(a[used:], axis=0, dtype=dtype) if used < n else 0.0
            if row == 1:
                done /= f
        return y, t[head - 1 : used : f]

    def reset(self) -> None:
        """Drop the partial bin and the previous sample's side of the threshold."""
        self._prev.fill(False)
        self._sums.fill(0.0)
        self._fill = 0


class CrossingsStage(_SpikeBandStage):
    """Threshold crossings per bin (:class:`~rtdecode.dsp.specs.CrossingsSpec`); C outputs."""

    _name = "crossings"
    _crossings = True


class SbpStage(_SpikeBandStage):
    """Spike-band power per bin (:class:`~rtdecode.dsp.specs.SbpSpec`); C outputs."""

    _name = "sbp"
    _power = True


class CrossingsSbpStage(_SpikeBandStage):
    """Crossings then power per bin in one pass (:class:`~rtdecode.dsp.specs.CrossingsSbpSpec`);
    2 C outputs."""

    _name = "crossings_sbp"
    _crossings = True
    _power = True
