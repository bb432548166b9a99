"""Scores shared by training, the experiments, the model builders and the demo (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NrmseComparison", "aicc", "bic", "compare_nrmse", "confusion", "nrmse", "r2_per_column", "rms",
           "sigma2_ml"]


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


def nrmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Normalised RMS error of response vectors (seed 001, eq. 7).

    ``sqrt(Σ_j ||y_j − ŷ_j||² / Σ_j ||y_j||²)`` over the rows ``j`` (trials) of ``y``, ``yhat``
    float (T, k). NaN when every target is 0.
    """
    y = np.asarray(y, dtype=np.float64)
    den = float(np.square(y).sum())
    if den <= 0:
        return float("nan")
    return float(np.sqrt(np.square(y - np.asarray(yhat, np.float64)).sum() / den))


@dataclass(frozen=True)
class NrmseComparison:
    """NRMSE of a model and of a baseline on the same rows, and a bootstrap interval of the gap."""

    model: float
    baseline: float
    diff: float  #: ``model − baseline`` (negative: the model is better)
    lo: float  #: lower end of the ``level`` bootstrap interval of ``diff``
    hi: float  #: upper end
    rows: int
    level: float

    @property
    def model_better(self) -> bool:
        """The whole interval is below zero: the model's lower error is not sampling noise."""
        return self.hi < 0.0

    def to_json(self) -> dict[str, float | int | list[float]]:
        """Plain numbers (4 decimals) for results files and model metadata."""
        return {"model": round(self.model, 4), "baseline": round(self.baseline, 4),
                "diff": round(self.diff, 4), "ci": [round(self.lo, 4), round(self.hi, 4)],
                "rows": self.rows, "level": self.level}


def compare_nrmse(y: np.ndarray, model: np.ndarray, baseline: np.ndarray, *, draws: int = 2000,
                  level: float = 0.95, seed: int = 0) -> NrmseComparison:
    """:func:`nrmse` of ``model`` minus that of ``baseline`` with a paired bootstrap interval.

    The rows (trials) of ``y``, ``model`` and ``baseline`` (float (T, k)) are resampled with
    replacement ``draws`` times, the same rows for both predictions (a paired comparison), and
    the ``level`` percentile interval of the difference is reported.
    """
    y = np.asarray(y, np.float64)
    e_model = np.square(y - np.asarray(model, np.float64)).sum(axis=1)
    e_base = np.square(y - np.asarray(baseline, np.float64)).sum(axis=1)
    den = np.square(y).sum(axis=1)
    idx = np.random.default_rng(seed).integers(0, len(y), size=(draws, len(y)))
    d = den[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = np.sqrt(e_model[idx].sum(axis=1) / d) - np.sqrt(e_base[idx].sum(axis=1) / d)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.nanpercentile(diffs, [tail, 100.0 - tail])
    a, b = nrmse(y, model), nrmse(y, baseline)
    return NrmseComparison(a, b, a - b, float(lo), float(hi), len(y), level)


def sigma2_ml(y: np.ndarray, yhat: np.ndarray) -> float:
    """Maximum-likelihood noise variance ``Σ ||y_i − ŷ_i||² / (N k)`` (seed 001, eq. 9)."""
    err = np.asarray(y, np.float64) - np.asarray(yhat, np.float64)
    return float(np.square(err).mean())


def bic(sigma2: float, n_values: int, n_params: int) -> float:
    """Bayesian information criterion ``Nk log σ̂² + p log(Nk)`` (seed 001, eq. 10).

    ``n_values`` is ``N k`` (trials × responses), ``n_params`` the free parameters ``p``.
    """
    return float(n_values * np.log(sigma2) + n_params * np.log(n_values))


def aicc(sigma2: float, n_values: int, n_params: int) -> float:
    """Corrected Akaike criterion ``Nk log σ̂² + Nk (p + Nk) / (Nk − p − 2)`` (seed 001, eq. 11).

    As in the paper, the formula is applied as written even when ``p > Nk − 2`` (the
    correction is then negative, as in its Table 2); NaN when ``Nk − p − 2 = 0``.
    """
    den = n_values - n_params - 2
    if den == 0:
        return float("nan")
    return float(n_values * np.log(sigma2) + n_values * (n_params + n_values) / den)
