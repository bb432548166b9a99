"""Time-domain EMG features over a causal sliding window (the classic baseline's front end).

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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["HUDGINS", "TD_FEATURES", "td_features"]

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
