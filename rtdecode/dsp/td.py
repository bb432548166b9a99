"""Time-domain EMG features over a causal sliding window, and the ``td`` chain stage.

The Hudgins time-domain set (and RMS) over a causal sliding window of ``W`` samples ending
at each sample (the window a live classifier would have):

- MAV, mean absolute value: ``mean |x|``;
- WL, waveform length: ``Σ |x[i] − x[i−1]|``;
- ZC, zero crossings: sign changes with ``|x[i] − x[i−1]| ≥ threshold``;
- SSC, slope sign changes: ``(x[i] − x[i−1])·(x[i] − x[i+1]) > 0`` with one of the two
  differences ``≥ threshold`` (evaluated at the middle sample, so it is known one sample
  later; the count over the window ending at ``t`` uses middles up to ``t − 1``);
- RMS, root mean square: ``sqrt(mean x²)``.

Before the first ``W`` samples a window holds what has been seen (``zero_history=False``:
means over the samples seen, no difference before the first sample) or, as a streaming
decoder starts (``zero_history=True``), ``W + 1`` zero samples before the first one.
Features are computed with cumulative sums (O(T·C)) and are exactly causal.

:class:`TdStage` (spec ``{"kind": "td", "window_s", "threshold", "features"}``) streams them
as a chain stage (state: the last ``W + 1`` samples; output channel ``f · C + c`` is feature
``f`` of input channel ``c``), so a network can be trained on them and the daemon computes
the same; :class:`~rtdecode.decoders.td.TDDecoder` (the classic decoder) uses the same step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rtdecode.dsp.base import Stage, check_io
from rtdecode.dsp.specs import TdSpec
from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["HUDGINS", "TD_FEATURES", "TdStage", "td_features", "td_step"]

#: Feature names, in the column-block order :func:`td_features` writes them.
TD_FEATURES = ("mav", "wl", "zc", "ssc", "rms")
#: The Hudgins set.
HUDGINS = ("mav", "wl", "zc", "ssc")


def _window_sum(v: np.ndarray, window: int) -> np.ndarray:
    """Causal sum over the last ``window`` rows (fewer at the start): (T, C) → (T, C)."""
    c = np.cumsum(v, axis=0, dtype=np.float64)
    out = c.copy()
    out[window:] -= c[:-window]
    return out


def td_features(x: np.ndarray, window: int, threshold: float = 0.0, features: Sequence[str] = HUDGINS,
                zero_history: bool = False) -> np.ndarray:
    """Causal time-domain features of every channel over the ``window`` samples ending at each sample.

    Parameters
    ----------
    x : float (T, C)
        Filtered EMG, physical units (e.g. mV).
    window : int
        Window length, samples (≥ 2).
    threshold : float
        Dead zone of ZC and SSC, units of ``x``.
    features : sequence of str
        Some of :data:`TD_FEATURES`, written in that order (default the Hudgins set).
    zero_history : bool
        Windows start full of zeros (a streaming decoder's reset state) instead of holding
        only the samples seen.

    Returns
    -------
    float64 (T, F·C)
        One column block per feature: MAV and RMS are means, WL, ZC and SSC per-window sums.
    """
    if window < 2:
        raise ConfigError(f"feature window must be ≥ 2 samples, got {window}", "use e.g. 200 ms")
    unknown = [f for f in features if f not in TD_FEATURES]
    if unknown or not features:
        raise ConfigError(f"unknown time-domain features {unknown or list(features)}",
                          f"use some of {', '.join(TD_FEATURES)}")
    x = np.asarray(x, dtype=np.float64)
    if zero_history:
        pad = window + 1
        return td_features(np.vstack([np.zeros((pad, x.shape[1])), x]), window, threshold, features)[pad:]
    t, _ = x.shape
    d = np.zeros_like(x)
    d[1:] = x[1:] - x[:-1]  # d[i] = x[i] - x[i-1]
    absd = np.abs(d)
    n = np.minimum(np.arange(1, t + 1), window)[:, None].astype(np.float64)
    blocks = []
    for name in (f for f in TD_FEATURES if f in features):
        if name == "mav":
            blocks.append(_window_sum(np.abs(x), window) / n)
        elif name == "wl":
            blocks.append(_window_sum(absd, window))
        elif name == "zc":
            zc = np.zeros_like(x)
            zc[1:] = ((x[1:] * x[:-1]) < 0) & (absd[1:] >= threshold)
            blocks.append(_window_sum(zc, window))
        elif name == "ssc":
            blocks.append(_window_sum(_slope_changes(x, d, threshold), window))
        else:
            blocks.append(np.sqrt(_window_sum(x * x, window) / n))
    return np.concatenate(blocks, axis=1)


def _slope_changes(x: np.ndarray, d: np.ndarray, threshold: float) -> np.ndarray:
    """Slope sign change at the middle sample m = i-1 of (i-2, i-1, i), known at sample i."""
    ssc = np.zeros_like(x)
    if x.shape[0] >= 3:
        left, right = d[1:-1], -d[2:]  # x[m]-x[m-1], x[m]-x[m+1]
        ssc[2:] = ((left * right) > 0) & ((np.abs(left) >= threshold) | (np.abs(right) >= threshold))
    return ssc


def td_step(buf: np.ndarray, x: np.ndarray, window: int, threshold: float, features: Sequence[str]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Features of new samples given the previous ``window + 1`` samples.

    Parameters
    ----------
    buf : float (window + 1, C)
        The samples before ``x`` (zeros at the start: ``zero_history``).
    x : float (n, C)

    Returns
    -------
    feats : float64 (n, F·C)
    buf : float64 (window + 1, C)
        The state after ``x``.
    """
    xs = np.concatenate([buf, np.asarray(x, dtype=np.float64)])
    feats = td_features(xs, window, threshold, features)[buf.shape[0]:]
    return feats, xs[-(window + 1):].copy()


class TdStage(Stage):
    """Time-domain features over a causal window (:class:`~rtdecode.dsp.specs.TdSpec`).

    Parameters
    ----------
    spec : TdSpec
    rate_hz : float
        Input sample rate, Hz (unchanged).
    n_in : int
        Channel count C; the output has ``len(features) · C`` channels, feature-major.
    """

    def __init__(self, spec: TdSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "td")
        self.window = max(2, int(round(spec.window_s * rate)))
        self.threshold = float(spec.threshold)
        self.features = tuple(f for f in TD_FEATURES if f in spec.features)
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in, self.n_out = n, len(self.features) * n
        self.delay_s = 0.5 * (self.window - 1) / rate
        self.memory_s = (self.window + 1) / rate
        self._buf = np.zeros((self.window + 1, n))

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features of new (checked) samples; see :meth:`Stage.step`. float64 (n, F·C)."""
        y, self._buf = td_step(self._buf, x, self.window, self.threshold, self.features)
        return y, t

    def reset(self) -> None:
        """Zero window."""
        self._buf[:] = 0.0
