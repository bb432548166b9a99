"""Muscle synergies: non-negative matrix factorisation of the scaled MEPs (seed 001, eqs. 2–4).

``M ≈ A · B`` with ``M`` (N, k) the min-max scaled responses, ``A`` (N, r) ≥ 0 the synergy
activations and ``B`` (r, k) ≥ 0 the basis (scikit-learn's NMF). The activations are rescaled
to at most 1 per synergy (and the basis by the inverse), so a sigmoid can reach them: the
Synergy head predicts ``a ∈ [0, 1]^r`` and the response ``a · B``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["Synergies", "fit_synergies"]


@dataclass(frozen=True)
class Synergies:
    """Activations float64 (N, r) in [0, 1] and basis float64 (r, k); ``explained`` is the R² of A·B."""

    activations: np.ndarray
    basis: np.ndarray
    explained: float


def fit_synergies(y: np.ndarray, rank: int, seed: int) -> Synergies:
    """NMF of scaled responses ``y`` float (N, k) ≥ 0 with ``rank`` synergies."""
    from sklearn.decomposition import NMF

    y = np.clip(np.asarray(y, np.float64), 0.0, None)
    nmf = NMF(n_components=rank, init="nndsvda", max_iter=2000, random_state=seed)
    A = nmf.fit_transform(y)
    B = nmf.components_
    peak = np.maximum(A.max(axis=0), 1e-12)
    A, B = A / peak, B * peak[:, None]
    resid = y - A @ B
    explained = 1.0 - float(np.square(resid).sum() / max(np.square(y - y.mean(0)).sum(), 1e-300))
    logger.info("NMF: %d synergies explain R² = %.3f of the scaled responses", rank, explained)
    return Synergies(A, B, explained)
