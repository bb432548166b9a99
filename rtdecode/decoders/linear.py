"""Optimal linear (Wiener) filter over lagged inputs, fitted with numpy.

``y[t] = b + Σ_{l=0}^{L-1} W[:, :, L-1-l] · x[t-l]`` — causal, with zero history
before the first sample (the same front zero-padding as the streaming model).
"""

from __future__ import annotations

import numpy as np


def lagged_design(x: np.ndarray, lags: int) -> np.ndarray:
    """Stack the last ``lags`` frames of ``x`` (zero before the start).

    Parameters
    ----------
    x : float (n, C)
    lags : int
        Number of frames of history including the current one.

    Returns
    -------
    float64 (n, lags * C)
        Column block ``l`` holds ``x[t - (lags-1) + l]`` (oldest first).
    """
    n, c = x.shape
    pad = np.zeros((lags - 1 + n, c), dtype=np.float64)
    pad[lags - 1:] = x
    return np.concatenate([pad[l:l + n] for l in range(lags)], axis=1)


def fit_wiener(x: np.ndarray, y: np.ndarray, lags: int, ridge: float = 1e-3,
               segments: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (ridge) fit of a causal multi-lag linear filter.

    Parameters
    ----------
    x : float (n, C)
        Inputs (preprocessed frames).
    y : float (n, K)
        Targets.
    lags : int
        Frames of history (including the current frame).
    ridge : float
        L2 penalty relative to the mean diagonal of XᵀX.
    segments : int (n,), optional
        Trial id per frame; history never crosses a trial boundary.

    Returns
    -------
    W : float32 (K, C, lags)
        Conv weight (oldest lag first, as an ONNX ``Conv`` over ``[state, x]`` expects).
    b : float32 (K,)
    """
    if segments is None:
        X = lagged_design(x, lags)
    else:
        X = np.zeros((x.shape[0], lags * x.shape[1]))
        for s in np.unique(segments):
            idx = np.flatnonzero(segments == s)
            X[idx] = lagged_design(x[idx], lags)
    Xm = X.mean(axis=0)
    ym = y.mean(axis=0)
    Xc = X - Xm
    yc = y - ym
    G = Xc.T @ Xc
    lam = ridge * float(np.mean(np.diag(G))) if G.size else 0.0
    coef = np.linalg.solve(G + lam * np.eye(G.shape[0]), Xc.T @ yc)  # (L*C, K)
    b = ym - Xm @ coef
    c = x.shape[1]
    W = coef.T.reshape(y.shape[1], lags, c).transpose(0, 2, 1)  # (K, C, L)
    return W.astype(np.float32), b.astype(np.float32)


def apply_wiener(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Offline reference of the filter: float64 (n, K)."""
    k, c, lags = W.shape
    X = lagged_design(x, lags)
    coef = W.transpose(0, 2, 1).reshape(k, lags * c).T
    return X @ coef + b
