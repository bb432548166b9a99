"""Optimal linear (Wiener) filter over lagged inputs as a streaming decoder.

Seed 002's "optimal linear decoder": a multiple regression of the kinematics on a response
matrix of the last ``L`` frames of firing rates (``L = 4`` in the paper). Fitting is
:func:`rtdecode.decoders.linear.fit_wiener` (ridge least squares, history never crossing a
trial boundary); the streaming part is :class:`~rtdecode.decoders.fir.CausalLinearDecoder`.
"""

from __future__ import annotations

import numpy as np

from rtdecode.decoders.fir import CausalLinearDecoder
from rtdecode.decoders.linear import fit_wiener

__all__ = ["WienerDecoder"]


class WienerDecoder(CausalLinearDecoder):
    """Wiener filter decoder.

    Parameters
    ----------
    lags : int
        Frames of history including the current one (default 4, as in seed 002).
    ridge : float
        L2 penalty relative to the mean diagonal of the lagged Gram matrix.
    """

    kind = "wiener"

    def __init__(self, lags: int = 4, ridge: float = 1e-3) -> None:
        super().__init__(lags)
        self.ridge = float(ridge)

    def fit(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None) -> WienerDecoder:
        """Fit on observations ``x`` (n, C) and kinematics ``y`` (n, K)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        W, b = fit_wiener(x, y, self.lags, ridge=self.ridge, segments=segments)
        self._set_weights(W, b)
        self.reset()
        return self
