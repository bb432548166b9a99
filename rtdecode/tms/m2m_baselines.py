"""The classic baselines M2M-Net must beat, fitted on the same pulses (numpy only).

- :class:`MeanPerIntensity`: the mean response of the training pulses at the same intensity
  (the nearest trained intensity for a new one).
- :class:`NearestMapped`: the mean response of the ``k`` training pulses whose coil centres are
  nearest, at the same intensity; ``k`` = 1 is the nearest mapped point, and ``k`` is chosen
  by leave-one-out error on the training pulses (from ``K_CHOICES``), so the baseline is at
  least as good as the nearest point alone on its own data.
- :class:`VolumeRidge`: ridge regression on the (scaled, masked) volume, in its dual form
  (N × N Gram matrix); the ridge is chosen by exact leave-one-out error over ``RIDGES``
  (scaled by the mean kernel diagonal).

Every baseline predicts responses ≥ 0 (the targets are amplitudes).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["K_CHOICES", "RIDGES", "MeanPerIntensity", "NearestMapped", "VolumeRidge"]

#: Neighbour counts tried by :class:`NearestMapped`.
K_CHOICES = (1, 2, 3, 5, 8, 12, 20)
#: Relative ridges tried by :class:`VolumeRidge` (× the mean diagonal of the Gram matrix).
RIDGES = tuple(10.0 ** np.arange(-5.0, 2.5, 0.5))
#: Pulses closer than this in intensity (%MSO) count as the same intensity.
SAME_INTENSITY = 0.5


def _groups(intensity: np.ndarray) -> np.ndarray:
    """Distinct intensities (sorted), merging values within ``SAME_INTENSITY``."""
    levels: list[float] = []
    for v in np.sort(intensity):
        if not levels or v - levels[-1] > SAME_INTENSITY:
            levels.append(float(v))
    return np.asarray(levels)


def _level(levels: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Index of the nearest level for each intensity."""
    return np.abs(np.asarray(intensity)[:, None] - levels[None, :]).argmin(axis=1)


class MeanPerIntensity:
    """Mean training response per intensity."""

    name = "mean per intensity"

    def fit(self, intensity: np.ndarray, y: np.ndarray) -> MeanPerIntensity:
        """Fit on intensities (N,), %MSO, and responses (N, k)."""
        self.levels = _groups(intensity)
        lv = _level(self.levels, intensity)
        self.means = np.stack([y[lv == i].mean(axis=0) for i in range(len(self.levels))])
        return self

    def predict(self, intensity: np.ndarray) -> np.ndarray:
        """Responses (n, k) for intensities (n,)."""
        return self.means[_level(self.levels, intensity)]


class NearestMapped:
    """Mean response of the k nearest training coil positions at the same intensity."""

    name = "nearest mapped point"

    def fit(self, position_mm: np.ndarray, intensity: np.ndarray, y: np.ndarray) -> NearestMapped:
        """Fit on coil centres (N, 3), mm, intensities (N,), %MSO, responses (N, k)."""
        self.levels = _groups(intensity)
        self.lv = _level(self.levels, intensity)
        self.pos, self.y = np.asarray(position_mm, np.float64), np.asarray(y, np.float64)
        loo = {k: self._loo_error(k) for k in K_CHOICES}
        self.k = min(loo, key=lambda k: loo[k])
        logger.debug("nearest mapped point: leave-one-out error per k %s -> k = %d", loo, self.k)
        return self

    def _neighbours(self, pos: np.ndarray, level: int, k: int, skip: int | None = None) -> np.ndarray:
        idx = np.flatnonzero(self.lv == level)
        if skip is not None:
            idx = idx[idx != skip]
        d = np.linalg.norm(self.pos[idx] - pos, axis=1)
        return idx[np.argsort(d, kind="stable")[:k]]

    def _loo_error(self, k: int) -> float:
        err = 0.0
        for i in range(len(self.pos)):
            nb = self._neighbours(self.pos[i], int(self.lv[i]), k, skip=i)
            if nb.size:
                err += float(np.square(self.y[nb].mean(axis=0) - self.y[i]).sum())
        return err

    def predict(self, position_mm: np.ndarray, intensity: np.ndarray) -> np.ndarray:
        """Responses (n, k) for coil centres (n, 3), mm, and intensities (n,), %MSO."""
        lv = _level(self.levels, intensity)
        return np.stack([self.y[self._neighbours(p, int(level), self.k)].mean(axis=0)
                         for p, level in zip(np.asarray(position_mm, np.float64), lv, strict=True)])


class VolumeRidge:
    """Ridge regression on flattened volumes (dual form, intercept, LOO-chosen ridge)."""

    name = "ridge on the volume"

    def fit(self, X: np.ndarray, y: np.ndarray) -> VolumeRidge:
        """Fit on volumes flattened to (N, V) (float32 is fine) and responses (N, k)."""
        X = np.asarray(X, np.float32)
        self.x_mean = X.mean(axis=0)
        self.y_mean = y.mean(axis=0)
        Xc = X - self.x_mean
        K = (Xc @ Xc.T).astype(np.float64)
        s, U = np.linalg.eigh(K)
        s = np.clip(s, 0.0, None)
        Uy = U.T @ (y - self.y_mean)
        scale = float(np.trace(K)) / len(K) or 1.0
        best = (np.inf, RIDGES[0])
        for r in RIDGES:
            lam = r * scale
            h = (U**2) @ (s / (s + lam))  # diagonal of the hat matrix
            resid = (y - self.y_mean) - U @ ((s / (s + lam))[:, None] * Uy)
            err = float(np.square(resid / (1.0 - h)[:, None]).sum())
            best = min(best, (err, r))
        self.ridge = best[1]
        lam = self.ridge * scale
        alpha = U @ (Uy / (s + lam)[:, None])  # (N, k)
        self.coef = (Xc.T @ alpha.astype(np.float32))  # (V, k)
        logger.debug("volume ridge: relative ridge %g", self.ridge)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Responses (n, k) for flattened volumes (n, V), clipped at 0."""
        yhat = (np.asarray(X, np.float32) - self.x_mean) @ self.coef + self.y_mean
        return np.clip(yhat, 0.0, None)
