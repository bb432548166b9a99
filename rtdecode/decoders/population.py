"""Population-vector decoder (Georgopoulos et al. 1986; Moran & Schwartz 1999).

Each unit is fitted a cosine tuning to the movement velocity ``v`` (D-dimensional, usually
``D = 2``), by least squares with an intercept::

    r_i = b_i + m_i · (u_i · v)          (rate r_i; baseline b_i; depth m_i; unit preferred direction u_i)

The population vector is the average of the preferred directions weighted by the normalised
rates, ``PV_t = (1/N) Σ_i u_i (r_i,t − b_i) / m_i``, and a linear map fitted by least squares
scales it to the kinematics, ``ŷ_t = G PV_t + g``. Units whose depth is below
``min_depth_rel`` times the median depth are left out (their normalised rate is mostly noise).
Every step is linear in the rates, so the whole decoder is one linear map ``ŷ = L r + l`` —
optionally averaged over the last ``lags`` frames (a causal boxcar) — and exports to ONNX as a
causal convolution.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rtdecode.decoders.base import segment_slices
from rtdecode.decoders.fir import CausalLinearDecoder
from rtdecode.decoders.linear import lagged_design
from rtdecode.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["PopulationVectorDecoder", "fit_cosine_tuning"]


def fit_cosine_tuning(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares cosine tuning of each unit to the velocity.

    Parameters
    ----------
    x : float (n, C)
        Rates or counts per frame.
    v : float (n, D)
        Velocity per frame.

    Returns
    -------
    baseline : float64 (C,)
        ``b_i`` (units of ``x``).
    depth : float64 (C,)
        ``m_i = |c_i|`` (units of ``x`` per unit of ``v``).
    directions : float64 (C, D)
        Unit preferred directions ``u_i = c_i / m_i``.
    r2 : float64 (C,)
        Fraction of each unit's variance the tuning explains.
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    V1 = np.column_stack([np.ones(v.shape[0]), v])
    coef, *_ = np.linalg.lstsq(V1, x, rcond=None)  # (1 + D, C)
    baseline = coef[0]
    Cd = coef[1:].T  # (C, D)
    depth = np.linalg.norm(Cd, axis=1)
    directions = Cd / np.maximum(depth, 1e-300)[:, None]
    res = x - V1 @ coef
    var = x.var(axis=0)
    r2 = np.where(var > 0, 1.0 - res.var(axis=0) / np.where(var > 0, var, 1.0), 0.0)
    return baseline, depth, directions, r2


class PopulationVectorDecoder(CausalLinearDecoder):
    """Population-vector decoder, scaled to the kinematics by a fitted linear map.

    Parameters
    ----------
    lags : int
        Frames averaged (causal boxcar) before decoding (default 1: instantaneous, as in
        Moran & Schwartz's PVA).
    min_depth_rel : float
        Units with depth ``m_i < min_depth_rel * median(m)`` are left out.

    Attributes
    ----------
    baseline, depth : float64 (C,)
    directions : float64 (C, D)
    used : bool (C,)
        Units that contribute.
    G : float64 (K, D)
        Linear map from the population vector to the kinematics; ``g`` (K,) its offset.
    """

    kind = "population_vector"

    def __init__(self, lags: int = 1, min_depth_rel: float = 0.1) -> None:
        super().__init__(lags)
        self.min_depth_rel = float(min_depth_rel)
        self.baseline = np.zeros(0)
        self.depth = np.zeros(0)
        self.directions = np.zeros((0, 0))
        self.used = np.zeros(0, dtype=bool)
        self.G = np.zeros((0, 0))
        self.g = np.zeros(0)

    def fit(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None,
            velocity: np.ndarray | None = None) -> PopulationVectorDecoder:
        """Fit the tuning on ``velocity`` (default ``y``) and the output map on ``y``.

        Parameters
        ----------
        x : float (n, C)
            Rates / counts per frame.
        y : float (n, K)
            Kinematics to decode (usually the velocity itself).
        segments : int (n,), optional
            Trial ids (the boxcar history restarts at each trial).
        velocity : float (n, D), optional
            Velocity the units are tuned to (default: ``y``).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        v = y if velocity is None else np.asarray(velocity, dtype=np.float64)
        if x.shape[0] != y.shape[0] or v.shape[0] != x.shape[0]:
            raise DataError(f"x {x.shape}, y {y.shape} and velocity {v.shape} differ in length",
                            "give one row per frame")
        xs = self._smooth(x, segments)
        self.baseline, self.depth, self.directions, r2 = fit_cosine_tuning(xs, v)
        med = float(np.median(self.depth)) if self.depth.size else 0.0
        self.used = self.depth >= self.min_depth_rel * med
        if not self.used.any():
            raise DataError("no unit is tuned to the velocity", "check the data or lower min_depth_rel")
        n_used = int(self.used.sum())
        # PV = (x − b) @ B with B[i] = u_i / (m_i N) for used units (0 otherwise)
        scaled = self.directions / np.maximum(self.depth, 1e-300)[:, None]
        B = np.where(self.used[:, None], scaled, 0.0) / n_used
        pv = (xs - self.baseline) @ B  # (n, D)
        P1 = np.column_stack([pv, np.ones(pv.shape[0])])
        coef, *_ = np.linalg.lstsq(P1, y, rcond=None)  # (D + 1, K)
        self.G = coef[:-1].T
        self.g = coef[-1]
        Lmap = self.G @ B.T  # (K, C)
        bias = self.g - Lmap @ self.baseline
        W = np.repeat((Lmap / self.lags)[:, :, None], self.lags, axis=2)
        self._set_weights(W, bias)
        self.reset()
        logger.debug("population vector: %d/%d units used, median tuning R² %.3f", n_used,
                     self.used.size, float(np.median(r2)))
        return self

    def _smooth(self, x: np.ndarray, segments: np.ndarray | None) -> np.ndarray:
        if self.lags == 1:
            return x
        out = np.empty_like(x)
        c = x.shape[1]
        for sl in segment_slices(x.shape[0], segments):
            out[sl] = lagged_design(x[sl], self.lags).reshape(-1, self.lags, c).mean(axis=1)
        return out

    def describe(self) -> dict[str, Any]:
        """Sizes and the number of units used."""
        out = super().describe()
        out.update(units_used=int(self.used.sum()), lags=self.lags)
        return out
