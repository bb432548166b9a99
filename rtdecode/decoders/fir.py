"""Causal multi-lag linear decoders (FIR): the common base of the Wiener filter and the
population-vector decoder.

``y_t = b + Σ_{l=0}^{L-1} W[:, :, L-1-l] · x_{t-l}`` with zero history before the first frame —
exactly the causal convolution :func:`rtdecode.export.onnx_graphs.causal_conv_graph` writes,
so these decoders export to ONNX unchanged.
"""

from __future__ import annotations

import numpy as np

from rtdecode.decoders.base import StreamingDecoder, check_frames
from rtdecode.decoders.linear import apply_wiener

__all__ = ["CausalLinearDecoder"]


class CausalLinearDecoder(StreamingDecoder):
    """A fitted causal FIR decoder; subclasses set ``W`` and ``b`` in :meth:`fit`.

    Attributes
    ----------
    W : float64 (K, C, L)
        Weights, oldest lag first (the ONNX ``Conv`` layout).
    b : float64 (K,)
        Bias.
    lags : int
        ``L``, frames of history including the current one.
    """

    kind = "linear"

    def __init__(self, lags: int) -> None:
        if int(lags) < 1:
            raise ValueError(f"lags must be >= 1, got {lags}")
        self.lags = int(lags)
        self.W = np.zeros((0, 0, self.lags))
        self.b = np.zeros(0)
        self._hist = np.zeros((self.lags - 1, 0))

    def _set_weights(self, W: np.ndarray, b: np.ndarray) -> None:
        W = np.asarray(W, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        self.W, self.b = W, b
        self.n_outputs, self.n_inputs = int(W.shape[0]), int(W.shape[1])
        self._hist = np.zeros((self.lags - 1, self.n_inputs))

    def reset(self) -> None:
        """Zero history (the front zero padding of the offline filter)."""
        self._hist[:] = 0.0

    def step(self, x: np.ndarray) -> np.ndarray:
        """Filter new frames ``x`` (m, C) → float64 (m, K)."""
        self._require_fitted()
        x = check_frames(x, self.n_inputs, type(self).__name__)
        m = x.shape[0]
        L = self.lags
        xs = np.concatenate([self._hist, x]) if L > 1 else x
        y = np.broadcast_to(self.b, (m, self.n_outputs)).copy()
        for lag in range(L):
            y += xs[lag:lag + m] @ self.W[:, :, lag].T
        if L > 1:
            self._hist[:] = xs[xs.shape[0] - (L - 1):]
        return y

    def _offline(self, x: np.ndarray) -> np.ndarray:
        return apply_wiener(x, self.W, self.b)
