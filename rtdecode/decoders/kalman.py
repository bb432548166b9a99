"""Kalman-filter decoder: kinematics as the hidden state, binned spike counts as observations.

Model (Wu et al. 2003/2006; seed 002's "individual Kalman filter")::

    x_t = A x_{t-1} + a + w_t,   w ~ N(0, W)      x: kinematics (d), e.g. (vx, vy) or (px, py, vx, vy)
    z_t = H x_t     + c + q_t,   q ~ N(0, Q)      z: spike counts / rates of C units

``A, a, W`` and ``H, c, Q`` are fitted by least squares (:func:`fit_linear_gaussian`).

Steady-state gain (streaming and ONNX)
--------------------------------------
The covariance recursion of a Kalman filter does not depend on the data, only on
``(A, W, H, Q)``: for a time-invariant model with ``(A, H)`` detectable and ``(A, W^½)``
stabilisable the prior covariance converges geometrically to the solution of the discrete
algebraic Riccati equation, and the gain to ``K∞`` — for neural data within a second or two
(Malik et al. 2011, IEEE TNSRE 19:25). With ``K∞`` the filter is a fixed linear
time-invariant recursion::

    x̂_t = M x̂_{t-1} + K∞ z_t + g,   M = (I − K∞ H) A,   g = (I − K∞ H) a − K∞ c

whose only state is ``x̂`` (d numbers), with no matrix factorisation per frame. This is what
:meth:`KalmanDecoder.step` runs by default and what the ONNX graph computes; only the
first-frame transient differs from the time-varying filter (``steady_state=False``, Joseph-form
covariance updates), and the test suite shows the two converge.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from rtdecode.decoders.base import StreamingDecoder, check_frames
from rtdecode.decoders.statespace import (
    LinearGaussianModel,
    fit_linear_gaussian,
    joseph_update,
    kalman_predict,
    steady_state_gain,
)

logger = logging.getLogger(__name__)

__all__ = ["KalmanDecoder"]


class KalmanDecoder(StreamingDecoder):
    """Kalman-filter decoder (steady-state gain by default).

    Parameters
    ----------
    steady_state : bool
        Run the steady-state filter (default; what the ONNX export computes) or the full
        time-varying filter with Joseph-form covariance updates.
    ridge : float
        Relative ridge of the least-squares fits (conditioning only).

    Attributes
    ----------
    model : LinearGaussianModel
        The fitted ``A, a, W, H, c, Q, x0, P0``.
    K_inf : float64 (d, C)
        Steady-state gain.
    P_inf : float64 (d, d)
        Steady-state prior covariance.
    M : float64 (d, d)
        ``(I − K∞ H) A``, the recursion of the steady-state filter.
    g : float64 (d,)
        ``(I − K∞ H) a − K∞ c``.
    K : float64 (d, C)
        The gain of the last frame of the time-varying filter (``K∞`` in steady state).
    """

    kind = "kalman"

    def __init__(self, *, steady_state: bool = True, ridge: float = 1e-9) -> None:
        self.steady_state = bool(steady_state)
        self.ridge = float(ridge)
        self.model: LinearGaussianModel | None = None
        self.K_inf = np.zeros((0, 0))
        self.P_inf = np.zeros((0, 0))
        self.M = np.zeros((0, 0))
        self.g = np.zeros(0)
        self.K = np.zeros((0, 0))
        self._x = np.zeros(0)
        self._P = np.zeros((0, 0))

    def fit(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None) -> KalmanDecoder:
        """Fit on observations ``x`` (n, C) (counts per bin) and kinematics ``y`` (n, d).

        Transitions (``A``) are only taken within a segment; with enough segments the
        initial state ``x0, P0`` is the mean / spread of their first frames.
        """
        model = fit_linear_gaussian(y, x, segments, ridge=self.ridge)
        self.set_model(model)
        return self

    def set_model(self, model: LinearGaussianModel) -> KalmanDecoder:
        """Use a given state-space model (observations = the decoder's inputs)."""
        self.model = model
        self.K_inf, self.P_inf = steady_state_gain(model)
        IKH = np.eye(model.d) - self.K_inf @ model.H
        self.M = IKH @ model.A
        self.g = IKH @ model.a - self.K_inf @ model.c
        self.n_inputs = model.m
        self.n_outputs = model.d
        rho = float(np.max(np.abs(np.linalg.eigvals(self.M))))
        logger.debug("Kalman decoder: d=%d, C=%d, spectral radius of M %.4f", model.d, model.m, rho)
        self.reset()
        return self

    def reset(self) -> None:
        """Back to the initial state ``x0`` (and ``P0`` for the time-varying filter)."""
        if self.model is None:
            return
        self._x = self.model.x0.copy()
        self._P = self.model.P0.copy()
        self.K = self.K_inf.copy()

    def step(self, x: np.ndarray) -> np.ndarray:
        """Filter new frames ``x`` (m, C) → kinematics float64 (m, d)."""
        self._require_fitted()
        z = check_frames(x, self.n_inputs, "KalmanDecoder")
        out = np.empty((z.shape[0], self.n_outputs))
        if self.steady_state:
            U = z @ self.K_inf.T + self.g  # (m, d)
            s = self._x
            M = self.M
            for t in range(z.shape[0]):
                s = M @ s + U[t]
                out[t] = s
            self._x = s
            return out
        m = self.model
        assert m is not None
        for t in range(z.shape[0]):
            xp, Pp = kalman_predict(self._x, self._P, m.A, m.a, m.W)
            self._x, self._P, _, self.K = joseph_update(xp, Pp, z[t], m.H, m.c, m.Q)
            out[t] = self._x
        return out

    def _offline(self, x: np.ndarray) -> np.ndarray:
        if not self.steady_state:
            return super()._offline(x)
        # an independent implementation: the LTI system (M, K∞) simulated by scipy (imported here:
        # ~1 s that the daemon, which never runs this offline path, need not pay at start-up)
        from scipy import signal

        s0, U = self.lti_input(x)
        d = self.n_outputs
        sys = (self.M, np.eye(d), self.M, np.eye(d), 1.0)
        if x.shape[0] == 0:
            return np.zeros((0, d))
        _, yout, _ = signal.dlsim(sys, U, x0=s0)
        return np.asarray(yout).reshape(x.shape[0], d)

    def lti_input(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Initial state and input sequence of the steady-state recursion ``x̂_t = M x̂_{t-1} + u_t``.

        Returns
        -------
        x_init : float64 (d,)
            ``x0``.
        U : float64 (n, d)
            ``u_t = K∞ z_t + g``.
        """
        assert self.model is not None
        return self.model.x0.copy(), np.asarray(x, np.float64) @ self.K_inf.T + self.g

    def receptive_field(self, tol: float = 0.01, max_frames: int = 100000) -> int:
        """Frames after which the recursion forgets its past to ``tol`` (IIR "receptive field").

        The steady-state filter is IIR; this is the smallest ``n`` with ``ρ(M)^n ≤ tol``
        (``ρ`` the spectral radius), declared as the model's receptive field so warm-up
        flags cover the start-up transient.
        """
        self._require_fitted()
        rho = float(np.max(np.abs(np.linalg.eigvals(self.M))))
        if rho <= 0.0:
            return 1
        if rho >= 1.0:
            return max_frames
        return int(min(max_frames, max(1, math.ceil(math.log(tol) / math.log(rho)))))

    def describe(self) -> dict[str, Any]:
        """Sizes, fit statistics and the steady-state recursion's spectral radius."""
        out = super().describe()
        if self.model is not None:
            out.update(fit=self.model.fit_info, steady_state=self.steady_state,
                       spectral_radius=float(np.max(np.abs(np.linalg.eigvals(self.M)))))
        return out
