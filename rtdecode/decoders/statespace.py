"""Linear-Gaussian state-space models: least-squares fit and numerically careful Kalman steps.

Model (one frame per step)::

    x_t = A x_{t-1} + a + w_t,    w_t ~ N(0, W)       (state: kinematics, d)
    z_t = H x_t     + c + q_t,    q_t ~ N(0, Q)       (observation, m)

``a`` and ``c`` are the affine offsets a least-squares fit with intercepts produces (they are
zero for centred data). The same fit serves the Kalman-filter *decoder* (z = binned spike
counts) and the Kalman *fusion* filter (z = stacked decoder outputs).

Numerics: covariance updates use the Joseph form and are symmetrised; gains come from
linear solves (``np.linalg.solve`` / ``cho_solve``), never from explicit inverses; a tiny jitter
is added to a covariance only when its Cholesky factorisation fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import linalg

from rtdecode.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = [
    "LinearGaussianModel",
    "ensure_spd",
    "fit_linear_gaussian",
    "joseph_update",
    "kalman_predict",
    "nearest_spd",
    "steady_state_gain",
    "transition_pairs",
]

#: Relative eigenvalue floor of fitted covariances (times their largest eigenvalue).
SPD_REL_FLOOR = 1e-9


def symmetrize(M: np.ndarray) -> np.ndarray:
    """``(M + Mᵀ) / 2``."""
    return 0.5 * (M + M.T)


def nearest_spd(M: np.ndarray, rel_floor: float = SPD_REL_FLOOR) -> np.ndarray:
    """Symmetric positive-definite matrix nearest to ``M`` with an eigenvalue floor.

    Parameters
    ----------
    M : float (n, n)
    rel_floor : float
        Eigenvalues are raised to at least ``rel_floor * max(|eig|)`` (and to a tiny
        absolute floor when ``M`` is zero).

    Returns
    -------
    float64 (n, n)
    """
    S = symmetrize(np.asarray(M, dtype=np.float64))
    w, V = np.linalg.eigh(S)
    floor = max(rel_floor * float(np.max(np.abs(w), initial=0.0)), 1e-300)
    w = np.maximum(w, floor)
    return symmetrize((V * w) @ V.T)


def ensure_spd(P: np.ndarray, jitter_rel: float = 1e-12, tries: int = 8) -> tuple[np.ndarray, bool]:
    """Symmetrise ``P`` and add a tiny diagonal jitter only if its Cholesky factorisation fails.

    Parameters
    ----------
    P : float64 (n, n)
    jitter_rel : float
        First jitter, relative to ``trace(P) / n``; multiplied by 100 on each failed try.
    tries : int
        Jitter attempts before falling back to :func:`nearest_spd`.

    Returns
    -------
    P : float64 (n, n)
        Symmetric positive definite.
    jittered : bool
        True when a jitter (or the eigenvalue repair) was needed.
    """
    P = symmetrize(P)
    try:
        np.linalg.cholesky(P)
        return P, False
    except np.linalg.LinAlgError:
        pass
    n = P.shape[0]
    scale = max(float(np.trace(P)) / n, 1e-300) if np.isfinite(P).all() else 1.0
    eps = jitter_rel * scale
    for _ in range(tries):
        Pj = P + eps * np.eye(n)
        try:
            np.linalg.cholesky(Pj)
            return Pj, True
        except np.linalg.LinAlgError:
            eps *= 100.0
    return nearest_spd(P), True


def kalman_predict(x: np.ndarray, P: np.ndarray, A: np.ndarray, a: np.ndarray,
                   W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time update ``x⁻ = A x + a``, ``P⁻ = A P Aᵀ + W`` (symmetrised).

    Parameters
    ----------
    x : float64 (d,)
    P : float64 (d, d)
    A : float64 (d, d)
    a : float64 (d,)
    W : float64 (d, d)

    Returns
    -------
    x_pred : float64 (d,)
    P_pred : float64 (d, d)
    """
    return A @ x + a, symmetrize(A @ P @ A.T + W)


def joseph_update(x: np.ndarray, P: np.ndarray, z: np.ndarray, H: np.ndarray, c: np.ndarray,
                  Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Measurement update in Joseph form.

    ``S = H P Hᵀ + Q``, ``K = P Hᵀ S⁻¹`` (a linear solve with ``S``, never its inverse), ``x⁺ = x + K ν`` with
    ``ν = z − H x − c``, ``P⁺ = (I − K H) P (I − K H)ᵀ + K Q Kᵀ`` (symmetric positive definite
    for any gain, which is why it is preferred to ``(I − K H) P``).

    Parameters
    ----------
    x : float64 (d,)
        Prior mean.
    P : float64 (d, d)
        Prior covariance.
    z : float64 (m,)
        Measurement.
    H : float64 (m, d)
    c : float64 (m,)
    Q : float64 (m, m)
        Measurement-noise covariance.

    Returns
    -------
    x_post : float64 (d,)
    P_post : float64 (d, d)
    nu : float64 (m,)
        Innovation ``z − H x − c``.
    K : float64 (d, m)
        Gain.
    """
    PHt = P @ H.T
    S = symmetrize(H @ PHt + Q)
    try:
        K = np.linalg.solve(S, PHt.T).T  # (d, m): K = P Hᵀ S⁻¹ (S is small and SPD)
    except np.linalg.LinAlgError:
        S, _ = ensure_spd(S)
        K = linalg.cho_solve(linalg.cho_factor(S, lower=True), PHt.T).T
    nu = z - H @ x - c
    IKH = np.eye(P.shape[0]) - K @ H
    P_post = symmetrize(IKH @ P @ IKH.T + K @ Q @ K.T)
    return x + K @ nu, P_post, nu, K


def transition_pairs(n: int, segments: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(prev, next)`` of consecutive frames within the same segment.

    Parameters
    ----------
    n : int
        Frames.
    segments : int (n,), optional
        Segment (trial) id of each frame; transitions never cross a change of id.

    Returns
    -------
    prev, nxt : int64 (n_pairs,)
    """
    prev = np.arange(n - 1)
    if segments is not None:
        seg = np.asarray(segments)
        prev = prev[seg[1:] == seg[:-1]]
    return prev, prev + 1


def _lstsq_affine(X: np.ndarray, Y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge least squares ``Y ≈ X Bᵀ + b``; returns ``B`` (q, p), ``b`` (q,), residuals (n, q)."""
    mx = X.mean(axis=0)
    my = Y.mean(axis=0)
    Xc = X - mx
    Yc = Y - my
    G = Xc.T @ Xc
    lam = ridge * max(float(np.mean(np.diag(G))), 1e-300)
    B = np.linalg.solve(G + lam * np.eye(G.shape[0]), Xc.T @ Yc).T
    b = my - B @ mx
    return B, b, Y - X @ B.T - b


def _residual_cov(R: np.ndarray, n_params: int) -> np.ndarray:
    dof = max(R.shape[0] - n_params, 1)
    return nearest_spd(R.T @ R / dof)


@dataclass(frozen=True)
class LinearGaussianModel:
    """A fitted linear-Gaussian state-space model (see the module docstring).

    Attributes
    ----------
    A : float64 (d, d)
        State transition.
    a : float64 (d,)
        State offset.
    W : float64 (d, d)
        Process-noise covariance (SPD).
    H : float64 (m, d)
        Observation matrix.
    c : float64 (m,)
        Observation offset.
    Q : float64 (m, m)
        Observation-noise covariance (SPD).
    x0 : float64 (d,)
        Initial state mean (the posterior "before the first frame").
    P0 : float64 (d, d)
        Initial state covariance (SPD).
    fit_info : dict
        Frames and transitions used, residual R² of each equation.
    """

    A: np.ndarray
    a: np.ndarray
    W: np.ndarray
    H: np.ndarray
    c: np.ndarray
    Q: np.ndarray
    x0: np.ndarray
    P0: np.ndarray
    fit_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.A.shape[0]
        m = self.H.shape[0]
        shapes = {"A": (d, d), "a": (d,), "W": (d, d), "H": (m, d), "c": (m,), "Q": (m, m),
                  "x0": (d,), "P0": (d, d)}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if np.shape(value) != shape:
                raise ConfigError(f"state-space model: {name} has shape {np.shape(value)}, "
                                  f"expected {shape} (d={d} states, m={m} observations)",
                                  "fit the model with fit_linear_gaussian")
            if not np.isfinite(value).all():
                raise ConfigError(f"state-space model: {name} has non-finite entries",
                                  "refit on finite data")

    @property
    def d(self) -> int:
        """State dimension."""
        return int(self.A.shape[0])

    @property
    def m(self) -> int:
        """Observation dimension."""
        return int(self.H.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats)."""
        out: dict[str, Any] = {k: np.asarray(getattr(self, k)).tolist()
                               for k in ("A", "a", "W", "H", "c", "Q", "x0", "P0")}
        out["fit_info"] = self.fit_info
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearGaussianModel:
        """Inverse of :meth:`to_dict`."""
        arr = {k: np.asarray(d[k], dtype=np.float64) for k in ("A", "a", "W", "H", "c", "Q", "x0", "P0")}
        return cls(**arr, fit_info=dict(d.get("fit_info", {})))


def fit_linear_gaussian(X: np.ndarray, Z: np.ndarray, segments: np.ndarray | None = None, *,
                        ridge: float = 1e-9, init: str = "auto") -> LinearGaussianModel:
    """Least-squares fit of ``A, a, W`` (state transitions) and ``H, c, Q`` (observations).

    Parameters
    ----------
    X : float (n, d)
        True state (kinematics) per frame.
    Z : float (n, m)
        Observation per frame (spike counts, or stacked decoder outputs).
    segments : int (n,), optional
        Trial id per frame: transitions are only taken within a trial, and with enough
        trials the initial state is fitted from the trials' first frames.
    ridge : float
        Ridge penalty relative to the mean diagonal of the Gram matrix (conditioning only).
    init : {"auto", "segments", "stationary"}
        ``x0, P0`` from the first frame of each segment (``"segments"``; ``"auto"`` does so
        when there are more than ``d + 1`` segments) or the mean / covariance of all frames.

    Returns
    -------
    LinearGaussianModel

    Raises
    ------
    DataError
        For mismatched shapes, non-finite values or too few frames.
    """
    X = np.asarray(X, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    if X.ndim != 2 or Z.ndim != 2 or X.shape[0] != Z.shape[0]:
        raise DataError(f"state X {X.shape} and observations Z {Z.shape} must be (n, d) and (n, m)",
                        "give one row per frame in both")
    if not (np.isfinite(X).all() and np.isfinite(Z).all()):
        raise DataError("state or observations contain NaN/Inf", "drop or repair those frames first")
    n, d = X.shape
    m = Z.shape[1]
    prev, nxt = transition_pairs(n, segments)
    if prev.size < d + 2 or n < d + 2:
        raise DataError(f"{n} frames / {prev.size} transitions are too few to fit a {d}-state model",
                        "give more training frames")
    A, a, Rw = _lstsq_affine(X[prev], X[nxt], ridge)
    W = _residual_cov(Rw, d + 1)
    H, c, Rq = _lstsq_affine(X, Z, ridge)
    Q = _residual_cov(Rq, d + 1)
    n_seg = 0
    starts = np.array([0])
    if segments is not None:
        seg = np.asarray(segments)
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        n_seg = starts.size
    use_segments = init == "segments" or (init == "auto" and n_seg > d + 1)
    if init not in ("auto", "segments", "stationary"):
        raise ConfigError(f"init={init!r} is not one of auto, segments, stationary", "use 'auto'")
    if use_segments and n_seg >= 2:
        x0 = X[starts].mean(axis=0)
        # spread of the trials' first frames, plus a small fraction of the overall variance
        # (first frames can be identical in some components, e.g. zero velocity)
        spread = np.cov(X[starts], rowvar=False).reshape(d, d)
        P0 = nearest_spd(spread + 1e-6 * np.diag(np.var(X, axis=0)))
    else:
        x0 = X.mean(axis=0)
        P0 = nearest_spd(np.cov(X, rowvar=False).reshape(d, d))
    info = {
        "frames": int(n), "transitions": int(prev.size), "segments": int(n_seg),
        "r2_transition": _r2(X[nxt], Rw), "r2_observation": _r2(Z, Rq),
        "init": "segments" if use_segments and n_seg >= 2 else "stationary",
    }
    logger.debug("fitted state-space model: d=%d m=%d %s", d, m, info)
    return LinearGaussianModel(A=A, a=a, W=W, H=H, c=c, Q=Q, x0=x0, P0=P0, fit_info=info)


def _r2(Y: np.ndarray, R: np.ndarray) -> float:
    ss_tot = float(((Y - Y.mean(axis=0)) ** 2).sum())
    return float(1.0 - (R ** 2).sum() / ss_tot) if ss_tot > 0 else 0.0


def steady_state_gain(model: LinearGaussianModel, *, max_iter: int = 100000,
                      tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state Kalman gain from the discrete algebraic Riccati equation.

    Solves ``P = A P Aᵀ − A P Hᵀ (H P Hᵀ + Q)⁻¹ H P Aᵀ + W`` for the prior covariance ``P``
    (``scipy.linalg.solve_discrete_are``; if that fails, by iterating the Riccati recursion to
    convergence) and returns ``K = P Hᵀ (H P Hᵀ + Q)⁻¹``.

    Returns
    -------
    K : float64 (d, m)
        Steady-state gain.
    P : float64 (d, d)
        Steady-state prior covariance.
    """
    A, W, H, Q = model.A, model.W, model.H, model.Q
    try:
        P = nearest_spd(linalg.solve_discrete_are(A.T, H.T, W, Q))
        ok = np.isfinite(P).all()
    except (linalg.LinAlgError, ValueError):
        ok = False
    if not ok:
        logger.debug("solve_discrete_are failed; iterating the Riccati recursion")
        P = model.P0.copy()
        for _ in range(max_iter):
            _, Pu, _, _ = joseph_update(np.zeros(model.d), P, np.zeros(model.m), H, np.zeros(model.m), Q)
            Pn = symmetrize(A @ Pu @ A.T + W)
            if np.max(np.abs(Pn - P)) <= tol * max(1.0, float(np.max(np.abs(P)))):
                P = Pn
                break
            P = Pn
    S = symmetrize(H @ P @ H.T + Q)
    K = linalg.cho_solve(linalg.cho_factor(S, lower=True), (P @ H.T).T).T
    return K, P
