"""Scores shared by training, the experiments, the model builders and the demo (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion", "r2_per_column", "rms"]


def r2_per_column(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Coefficient of determination of each column, ``1 − SS_res / SS_tot``.

    Parameters
    ----------
    y, yhat : float (n,) or (n, K)
        Targets and predictions.

    Returns
    -------
    float64 () or (K,)
        NaN where the target is constant.
    """
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    ss_res = ((y - yhat) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


def rms(err: np.ndarray) -> float:
    """Root mean square over all entries of ``err``."""
    return float(np.sqrt(np.mean(np.square(err))))


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (true class, predicted class) of integer labels, int64 (G, G)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return cm
