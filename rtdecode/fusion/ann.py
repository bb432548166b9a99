"""ANN decision fusion (seed 002): one tanh hidden layer, linear output, fitted with numpy/scipy.

``ŷ = W2 tanh(W1 z̃ + b1) + b2`` on standardised inputs ``z̃`` (the stacked decoder outputs of
one frame) and standardised targets. Training minimises the mean squared error plus an L2
weight decay with L-BFGS (``scipy.optimize.minimize``, analytic gradient), stops early when
the error on a validation split has not improved for ``patience`` iterations (keeping the
best weights), and keeps the best of ``restarts`` random initialisations (judged on the
validation split). The paper used scaled conjugate gradients and chose 6 hidden units — as
many as inputs — for its large experiment; ``hidden=None`` does the same.

Export: :meth:`ANNFusion.to_onnx` writes a stateless graph ``x`` ``[1, Σk_i, T]`` → ``y``
``[1, K, T]`` (standardisation folded into the weights) with
:class:`~rtdecode.runtime.metadata.ModelMetadata`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rtdecode.errors import DataError, ModelError
from rtdecode.runtime.metadata import ModelMetadata, OutputSpec

logger = logging.getLogger(__name__)

__all__ = ["ANNFusion"]


class _EarlyStopError(Exception):
    pass


class ANNFusion:
    """One-hidden-layer tanh network fusing decoder outputs frame by frame.

    Parameters
    ----------
    hidden : int, optional
        Hidden units (default: as many as inputs, the paper's choice).
    weight_decay : float
        L2 penalty on the weights (not the biases), relative to the mean squared error of
        standardised targets.
    max_iter : int
        L-BFGS iterations per restart.
    patience : int
        Iterations without a validation improvement before stopping.
    restarts : int
        Random initialisations; the one with the lowest validation error is kept.
    seed : int
        Seed of the initialisations (and of the validation split when none is given).

    Attributes
    ----------
    W1 : float64 (h, p)
    b1 : float64 (h,)
    W2 : float64 (K, h)
    b2 : float64 (K,)
        Weights on standardised data.
    in_mean, in_std : float64 (p,)
    out_mean, out_std : float64 (K,)
    history : dict
        Validation MSE of the kept weights, iterations run, per restart.
    """

    def __init__(self, hidden: int | None = None, *, weight_decay: float = 1e-4, max_iter: int = 400,
                 patience: int = 25, restarts: int = 3, seed: int = 0) -> None:
        self.hidden = hidden
        self.weight_decay = float(weight_decay)
        self.max_iter = int(max_iter)
        self.patience = int(patience)
        self.restarts = max(1, int(restarts))
        self.seed = int(seed)
        self.W1 = np.zeros((0, 0))
        self.b1 = np.zeros(0)
        self.W2 = np.zeros((0, 0))
        self.b2 = np.zeros(0)
        self.in_mean = self.in_std = np.zeros(0)
        self.out_mean = self.out_std = np.zeros(0)
        self.history: dict[str, Any] = {}

    # ------------------------------------------------------------------ parameters
    def _shapes(self, p: int, h: int, k: int) -> list[tuple[int, ...]]:
        return [(h, p), (h,), (k, h), (k,)]

    def _unpack(self, theta: np.ndarray, p: int, h: int, k: int) -> list[np.ndarray]:
        out, o = [], 0
        for shape in self._shapes(p, h, k):
            size = int(np.prod(shape))
            out.append(theta[o:o + size].reshape(shape))
            o += size
        return out

    def _loss_grad(self, theta: np.ndarray, Zs: np.ndarray, Ys: np.ndarray, p: int, h: int,
                   k: int) -> tuple[float, np.ndarray]:
        W1, b1, W2, b2 = self._unpack(theta, p, h, k)
        n = Zs.shape[0]
        A1 = np.tanh(Zs @ W1.T + b1)            # (n, h)
        E = A1 @ W2.T + b2 - Ys                 # (n, k)
        lam = self.weight_decay
        loss = 0.5 * float((E * E).sum()) / n + 0.5 * lam * (float((W1 * W1).sum()) + float((W2 * W2).sum()))
        dY = E / n
        gW2 = dY.T @ A1 + lam * W2
        gb2 = dY.sum(axis=0)
        dA = (dY @ W2) * (1.0 - A1 * A1)
        gW1 = dA.T @ Zs + lam * W1
        gb1 = dA.sum(axis=0)
        return loss, np.concatenate([gW1.ravel(), gb1, gW2.ravel(), gb2])

    def _mse(self, theta: np.ndarray, Zs: np.ndarray, Ys: np.ndarray, p: int, h: int, k: int) -> float:
        W1, b1, W2, b2 = self._unpack(theta, p, h, k)
        E = np.tanh(Zs @ W1.T + b1) @ W2.T + b2 - Ys
        return float((E * E).mean())

    # ------------------------------------------------------------------ fit / apply
    def fit(self, Z: np.ndarray, Y: np.ndarray, Z_val: np.ndarray | None = None,
            Y_val: np.ndarray | None = None, *, val_fraction: float = 0.25) -> ANNFusion:
        """Train on decoder outputs ``Z`` (n, p) → kinematics ``Y`` (n, K).

        Parameters
        ----------
        Z, Y : float (n, p), (n, K)
            Fusion-training set (decoders fitted on other data).
        Z_val, Y_val : float, optional
            Validation set for early stopping and restart selection; default: the last
            ``val_fraction`` of the training frames (a contiguous block, so neighbouring,
            correlated frames do not leak across the split).
        """
        from scipy import optimize  # here: the daemon, which never fits, need not import it

        Z = np.asarray(Z, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        if Z.ndim != 2 or Y.ndim != 2 or Z.shape[0] != Y.shape[0]:
            raise DataError(f"Z {Z.shape} and Y {Y.shape} must be (n, p) and (n, K)", "one row per frame")
        if Z_val is None or Y_val is None:
            n_val = max(1, int(round(val_fraction * Z.shape[0])))
            Z, Z_val = Z[:-n_val], Z[-n_val:]
            Y, Y_val = Y[:-n_val], Y[-n_val:]
        Z_val = np.asarray(Z_val, dtype=np.float64)
        Y_val = np.asarray(Y_val, dtype=np.float64)
        ok = np.isfinite(Z).all(axis=1) & np.isfinite(Y).all(axis=1)
        okv = np.isfinite(Z_val).all(axis=1) & np.isfinite(Y_val).all(axis=1)
        Z, Y, Z_val, Y_val = Z[ok], Y[ok], Z_val[okv], Y_val[okv]
        if Z.shape[0] < 2 or Z_val.shape[0] < 1:
            raise DataError("too few finite frames to train the ANN fusion", "give more fusion-training data")
        p, k = Z.shape[1], Y.shape[1]
        h = int(self.hidden) if self.hidden is not None else p
        self.in_mean, self.in_std = Z.mean(axis=0), np.maximum(Z.std(axis=0), 1e-12)
        self.out_mean, self.out_std = Y.mean(axis=0), np.maximum(Y.std(axis=0), 1e-12)
        Zs, Ys = (Z - self.in_mean) / self.in_std, (Y - self.out_mean) / self.out_std
        Zv, Yv = (Z_val - self.in_mean) / self.in_std, (Y_val - self.out_mean) / self.out_std
        rng = np.random.default_rng(self.seed)
        best_theta, best_val, runs = None, np.inf, []
        for r in range(self.restarts):
            lim1, lim2 = np.sqrt(6.0 / (p + h)), np.sqrt(6.0 / (h + k))
            theta0 = np.concatenate([rng.uniform(-lim1, lim1, h * p), np.zeros(h),
                                     rng.uniform(-lim2, lim2, k * h), np.zeros(k)])
            state = {"best": self._mse(theta0, Zv, Yv, p, h, k), "theta": theta0.copy(), "since": 0, "it": 0}

            def callback(xk: np.ndarray, state: dict = state) -> None:
                state["it"] += 1
                v = self._mse(xk, Zv, Yv, p, h, k)
                if v < state["best"] - 1e-12:
                    state.update(best=v, theta=xk.copy(), since=0)
                else:
                    state["since"] += 1
                    if state["since"] >= self.patience:
                        raise _EarlyStopError

            try:
                optimize.minimize(self._loss_grad, theta0, args=(Zs, Ys, p, h, k), jac=True,
                                  method="L-BFGS-B", callback=callback,
                                  options={"maxiter": self.max_iter})
            except _EarlyStopError:
                pass
            runs.append({"restart": r, "val_mse": state["best"], "iterations": state["it"]})
            if state["best"] < best_val:
                best_val, best_theta = state["best"], state["theta"]
        assert best_theta is not None
        self.W1, self.b1, self.W2, self.b2 = (a.copy() for a in self._unpack(best_theta, p, h, k))
        self.history = {"hidden": h, "val_mse_standardised": best_val, "runs": runs}
        logger.debug("ANN fusion: %d→%d→%d, validation MSE (standardised) %.4f", p, h, k, best_val)
        return self

    def _require_fitted(self) -> None:
        if self.W1.size == 0:
            raise ModelError("ANNFusion is not fitted", "call fit(Z, Y) first")

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Fuse frames ``Z`` (n, p) → float64 (n, K)."""
        self._require_fitted()
        Zs = (np.asarray(Z, dtype=np.float64) - self.in_mean) / self.in_std
        return (np.tanh(Zs @ self.W1.T + self.b1) @ self.W2.T + self.b2) * self.out_std + self.out_mean

    def folded_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weights on raw inputs / outputs: ``ŷ = W2' tanh(W1' z + b1') + b2'``."""
        self._require_fitted()
        W1 = self.W1 / self.in_std
        b1 = self.b1 - W1 @ self.in_mean
        W2 = self.W2 * self.out_std[:, None]
        b2 = self.b2 * self.out_std + self.out_mean
        return W1, b1, W2, b2

    def to_onnx(self, *, name: str, rate_hz: float, input_names: list[str], output_names: list[str],
                output_units: list[str] | None = None, provenance: dict | None = None,
                metrics: dict | None = None) -> bytes:
        """Serialise as a stateless ONNX graph (see :func:`rtdecode.export.classic_onnx.mlp_graph`).

        Parameters
        ----------
        name : str
        rate_hz : float
            Frame rate of the decoder outputs it fuses, Hz.
        input_names : list of str
            One per input (stacked decoder outputs, e.g. ``"kalman.vx"``).
        output_names, output_units : list of str
            One per fused output.
        """
        from rtdecode.export.classic_onnx import mlp_graph

        W1, b1, W2, b2 = self.folded_weights()
        if len(input_names) != W1.shape[1] or len(output_names) != W2.shape[0]:
            raise ModelError(f"{len(input_names)} input / {len(output_names)} output names for a "
                             f"{W1.shape[1]}→{W2.shape[0]} network", "give one name per input and output")
        units = output_units or [""] * len(output_names)
        meta = ModelMetadata(
            name=name, rate_hz=rate_hz, channels=W1.shape[1], channel_names=list(input_names),
            input_unit="decoder outputs", model_rate_hz=rate_hz, model_channels=W1.shape[1],
            outputs=[OutputSpec(name=n, unit=u) for n, u in zip(output_names, units, strict=True)],
            receptive_field=1, delay=0,
            provenance={"fusion": "ann", "hidden": int(W1.shape[0]), "training": self.history,
                        **(provenance or {})},
            metrics=dict(metrics or {}),
        )
        return mlp_graph(W1, b1, W2, b2, meta)
