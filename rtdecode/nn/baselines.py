"""Classic EMG classification baseline: time-domain features + linear discriminant analysis.

The Hudgins time-domain set over a causal sliding window of ``W`` samples ending at each
sample (the window a live classifier would have):

- MAV, mean absolute value: ``mean |x|``;
- WL, waveform length: ``Σ |x[i] − x[i−1]|``;
- ZC, zero crossings: sign changes with ``|x[i] − x[i−1]| ≥ threshold``;
- SSC, slope sign changes: ``(x[i] − x[i−1])·(x[i] − x[i+1]) > 0`` with one of the two
  differences ``≥ threshold`` (evaluated at the middle sample, so it is known one sample
  later; the count over the window ending at ``t`` uses middles up to ``t − 1``).

Windows before the first ``W`` samples use what has been seen (zero history). Features
are computed with cumulative sums (O(T·C)) and are exactly causal.

:class:`LDA`: shared-covariance Gaussian classifier with shrinkage, fitted in closed form.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["LDA", "td_features"]


def _window_sum(v: np.ndarray, window: int) -> np.ndarray:
    """Causal sum over the last ``window`` rows (fewer at the start): (T, C) → (T, C)."""
    c = np.cumsum(v, axis=0, dtype=np.float64)
    out = c.copy()
    out[window:] -= c[:-window]
    return out


def td_features(x: np.ndarray, window: int, threshold: float = 0.0) -> np.ndarray:
    """Causal MAV, WL, ZC, SSC of every channel over the ``window`` samples ending at each sample.

    Parameters
    ----------
    x : float (T, C)
        Filtered EMG, physical units (e.g. mV).
    window : int
        Window length, samples (≥ 2).
    threshold : float
        Dead zone of ZC and SSC, units of ``x``.

    Returns
    -------
    float64 (T, 4·C)
        Column blocks ``[MAV | WL | ZC | SSC]``; WL, ZC, SSC are per window (counts), MAV a mean.
    """
    if window < 2:
        raise ConfigError(f"feature window must be ≥ 2 samples, got {window}", "use e.g. 200 ms")
    x = np.asarray(x, dtype=np.float64)
    t, c = x.shape
    d = np.zeros_like(x)
    d[1:] = x[1:] - x[:-1]  # d[i] = x[i] - x[i-1]
    absd = np.abs(d)
    zc = np.zeros_like(x)
    zc[1:] = ((x[1:] * x[:-1]) < 0) & (absd[1:] >= threshold)
    # slope sign change at the middle sample m = i-1 of (i-2, i-1, i), known at sample i
    ssc = np.zeros_like(x)
    if t >= 3:
        left, right = d[1:-1], -d[2:]  # x[m]-x[m-1], x[m]-x[m+1]
        hit = ((left * right) > 0) & ((np.abs(left) >= threshold) | (np.abs(right) >= threshold))
        ssc[2:] = hit
    n = np.minimum(np.arange(1, t + 1), window)[:, None].astype(np.float64)
    mav = _window_sum(np.abs(x), window) / n
    wl = _window_sum(absd, window)
    return np.concatenate([mav, wl, _window_sum(zc, window), _window_sum(ssc, window)], axis=1)


class LDA:
    """Linear discriminant analysis with a shrunk pooled covariance.

    Parameters
    ----------
    shrinkage : float
        ``Σ = (1 − s)·S + s·(tr S / p)·I`` with ``S`` the pooled within-class covariance.

    Attributes
    ----------
    classes_ : int (G,)
    coef_ : float64 (G, p)
    intercept_ : float64 (G,)
    mean_, scale_ : float64 (p,)
        Feature standardisation (training statistics).
    """

    def __init__(self, shrinkage: float = 1e-2) -> None:
        if not 0.0 <= shrinkage <= 1.0:
            raise ConfigError(f"LDA shrinkage must be in [0, 1], got {shrinkage}", "use e.g. 0.01")
        self.shrinkage = float(shrinkage)

    def fit(self, X: np.ndarray, y: np.ndarray) -> LDA:
        """Fit on features (N, p) and integer labels (N,); returns ``self``."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).reshape(-1)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        Z = (X - self.mean_) / self.scale_
        self.classes_ = np.unique(y)
        means = np.stack([Z[y == k].mean(axis=0) for k in self.classes_])
        R = Z - means[np.searchsorted(self.classes_, y)]
        S = R.T @ R / max(1, Z.shape[0] - len(self.classes_))
        p = S.shape[0]
        S = (1 - self.shrinkage) * S + self.shrinkage * np.trace(S) / p * np.eye(p)
        priors = np.array([(y == k).mean() for k in self.classes_])
        coef = np.linalg.solve(S, means.T).T  # (G, p)
        self.coef_ = coef
        self.intercept_ = -0.5 * np.sum(coef * means, axis=1) + np.log(priors)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Discriminant scores (N, G)."""
        Z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return Z @ self.coef_.T + self.intercept_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels (N,)."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
