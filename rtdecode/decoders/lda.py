"""Linear discriminant analysis with a shrunk pooled covariance, fitted in closed form."""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["LDA"]


class LDA:
    """Linear discriminant analysis with a shrunk pooled covariance.

    Parameters
    ----------
    shrinkage : float
        ``Σ = (1 − s)·S + s·(tr S / p)·I`` with ``S`` the pooled within-class covariance.

    Attributes
    ----------
    classes_ : int (G,)
    coef_ : float64 (G, p)
    intercept_ : float64 (G,)
    mean_, scale_ : float64 (p,)
        Feature standardisation (training statistics).
    """

    def __init__(self, shrinkage: float = 1e-2) -> None:
        if not 0.0 <= shrinkage <= 1.0:
            raise ConfigError(f"LDA shrinkage must be in [0, 1], got {shrinkage}", "use e.g. 0.01")
        self.shrinkage = float(shrinkage)

    def fit(self, X: np.ndarray, y: np.ndarray) -> LDA:
        """Fit on features (N, p) and integer labels (N,); returns ``self``."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).reshape(-1)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        Z = (X - self.mean_) / self.scale_
        self.classes_ = np.unique(y)
        means = np.stack([Z[y == k].mean(axis=0) for k in self.classes_])
        R = Z - means[np.searchsorted(self.classes_, y)]
        S = R.T @ R / max(1, Z.shape[0] - len(self.classes_))
        p = S.shape[0]
        S = (1 - self.shrinkage) * S + self.shrinkage * np.trace(S) / p * np.eye(p)
        priors = np.array([(y == k).mean() for k in self.classes_])
        coef = np.linalg.solve(S, means.T).T  # (G, p)
        self.coef_ = coef
        self.intercept_ = -0.5 * np.sum(coef * means, axis=1) + np.log(priors)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Discriminant scores (N, G)."""
        Z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return Z @ self.coef_.T + self.intercept_

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The discriminants as one affine map of the raw features: ``scores = X @ W.T + b``.

        Returns
        -------
        W : float64 (G, p)
        b : float64 (G,)
        """
        W = self.coef_ / self.scale_
        return W, self.intercept_ - W @ self.mean_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels (N,)."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
