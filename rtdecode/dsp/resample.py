"""Rate-changing stages: decimate (anti-aliased) and bin (sum / mean of bins).

Both keep a global phase across chunks: output sample k depends on input samples
up to index ``k * factor + factor - 1`` (counted from the start or the last reset)
and is emitted in the call that delivers that sample; its time is that sample's
time. The phase bookkeeping is O(1) Python per call; the rest is vectorised.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.dsp.base import Stage, check_io, empty_output
from rtdecode.dsp.filters import SosState, sos_group_delay_s, sos_settle_s
from rtdecode.dsp.specs import BinSpec, DecimateSpec

logger = logging.getLogger(__name__)

__all__ = ["ANTIALIAS_ORDER", "BinStage", "DecimateStage", "antialias_sos"]

#: Order of the anti-alias Butterworth low-pass of :class:`DecimateStage`.
ANTIALIAS_ORDER = 8
#: Its cut-off as a fraction of the output Nyquist frequency.
ANTIALIAS_FRACTION = 0.8


def antialias_sos(factor: int, rate_hz: float) -> np.ndarray:
    """Anti-alias low-pass for decimation by ``factor`` at input rate ``rate_hz`` (Hz).

    Returns
    -------
    float64 (n_sections, 6)
        Order-8 Butterworth low-pass at ``0.8 * rate_hz / factor / 2`` Hz, as sections.
    """
    from scipy import signal  # when a stage is built (see rtdecode.dsp.filters)

    cutoff = ANTIALIAS_FRACTION * rate_hz / factor / 2.0
    return signal.butter(ANTIALIAS_ORDER, cutoff, btype="lowpass", fs=rate_hz, output="sos")


class DecimateStage(Stage):
    """Keep every ``factor``-th sample after an optional anti-alias filter.

    See :class:`~rtdecode.dsp.specs.DecimateSpec`. Output sample k is (filtered)
    input sample ``k * factor + factor - 1``; ``rate_out_hz = rate_in_hz / factor``.
    With ``factor = 1`` the stage is the identity (nothing to anti-alias).

    Parameters
    ----------
    spec : DecimateSpec
    rate_hz : float
        Input sample rate, Hz.
    n_in : int
        Channel count.

    Notes
    -----
    ``delay_s`` is the anti-alias filter's group delay at 0 Hz (0 without it).
    """

    def __init__(self, spec: DecimateSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "decimate")
        self.spec = spec.model_copy(deep=True)
        self.factor = int(spec.factor)
        self.rate_in_hz = rate
        self.rate_out_hz = rate / self.factor
        self.n_in = self.n_out = n
        self._filter: SosState | None = None
        self.delay_s = 0.0
        if spec.antialias and self.factor > 1:
            sos = antialias_sos(self.factor, rate)
            self._filter = SosState(sos, n)
            self.delay_s = sos_group_delay_s(sos, 0.0, rate)
            self.memory_s = sos_settle_s(sos, rate)
        self.memory_s += self.factor / rate
        self._phase = 0  # input samples seen (since build or reset) modulo factor

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decimate new samples; see :meth:`Stage.step`.

        Returns
        -------
        y : float64 (m, C)
            One row per input index ``k * factor + factor - 1`` that arrived in this call.
        t_out : float64 (m,)
            Times of those input samples, s.
        """
        n = x.shape[0]
        if self._filter is not None:
            x = self._filter.step(x)
        first = (self.factor - 1 - self._phase) % self.factor
        self._phase = (self._phase + n) % self.factor
        return np.ascontiguousarray(x[first :: self.factor]), t[first :: self.factor]

    def reset(self) -> None:
        """Zero the filter state and restart the phase (next output after ``factor`` inputs)."""
        self._phase = 0
        if self._filter is not None:
            self._filter.reset()


class BinStage(Stage):
    """Non-overlapping bins of ``factor`` samples (:class:`~rtdecode.dsp.specs.BinSpec`).

    Bin k holds input samples ``k*factor .. k*factor + factor - 1``; it is emitted
    when its last sample arrives, with that sample's time. A partial bin is kept
    as state. ``rate_out_hz = rate_in_hz / factor``; ``delay_s = (factor - 1) / 2 /
    rate_in_hz`` (the bin's centre relative to its last sample).

    Parameters
    ----------
    spec : BinSpec
        ``factor`` and ``reduce`` ("sum", e.g. spike counts, or "mean").
    rate_hz : float
        Input sample rate, Hz.
    n_in : int
        Channel count.
    """

    def __init__(self, spec: BinSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "bin")
        self.spec = spec.model_copy(deep=True)
        self.factor = int(spec.factor)
        self.rate_in_hz = rate
        self.rate_out_hz = rate / self.factor
        self.n_in = self.n_out = n
        self.delay_s = (self.factor - 1) / 2.0 / rate
        self.memory_s = self.factor / rate
        self._mean = spec.reduce == "mean"
        self._partial = np.zeros((self.factor, n), dtype=np.float64)
        self._fill = 0  # samples of the current, incomplete bin held in _partial

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin new samples; see :meth:`Stage.step`.

        Returns
        -------
        y : float64 (m, C)
            Sum (or mean) of each bin completed in this call.
        t_out : float64 (m,)
            Time of each completed bin's last sample, s.
        """
        n = x.shape[0]
        f, p = self.factor, self._fill
        n_bins = (p + n) // f
        if n_bins == 0:
            self._partial[p : p + n] = x
            self._fill = p + n
            return empty_output(self.n_out)
        used = n_bins * f - p  # new samples that go into completed bins
        if p:
            self._partial[p:f] = x[: f - p]
            first = self._partial.sum(axis=0, keepdims=True)
            rest = x[f - p : used].reshape(n_bins - 1, f, self.n_in).sum(axis=1)
            y = np.concatenate([first, rest])
        else:
            y = x[:used].reshape(n_bins, f, self.n_in).sum(axis=1)
        left = n - used
        self._partial[:left] = x[used:]
        self._fill = left
        if self._mean:
            y /= f
        return y, t[f - 1 - p : used : f]

    def reset(self) -> None:
        """Drop the partial bin."""
        self._fill = 0
        self._partial.fill(0.0)
