"""Evaluation protocols of the seed papers: which trials train, validate and test a model.

Seed 000 (Gamma CNN)
    Trials, in recording order, are taken in sequential groups of five: the first three
    of each group train, the fourth goes to cross-validation set A, the fifth to set B
    (:func:`groups_of_five`). Each of N attempts (restarts, differing only in the initial
    weights) keeps the step with the highest R² on A (model Amax) and on B (Bmax). The
    Amax with the highest R²(train) + R²(A) over the attempts is tested on B, and the Bmax
    with the highest R²(train) + R²(B) on A; the session score is the mean of Amax(B) and
    Bmax(A) (:func:`select_ab`). Controls: a linear decoder and the same network trained
    on time-shuffled inputs (:func:`shuffle_frames`).

Seed 004 (S-ConvNet)
    Leave one trial out: each trial is the test set once, the others train
    (:func:`leave_one_trial_out`; one of them is held out for early stopping).

Only the split and selection logic lives here (numpy, no torch); the training loops and
the protocol runs are in :mod:`rtdecode.nn.train.ab` and :mod:`rtdecode.nn.train.loto`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "Fold",
    "groups_of_five",
    "leave_one_trial_out",
    "select_ab",
    "shuffle_frames",
    "skip_mask",
]


def groups_of_five(trials: Sequence[int]) -> dict[str, list[int]]:
    """Seed 000's split: sequential groups of five trials → 3 train, 1 set A, 1 set B.

    Parameters
    ----------
    trials : sequence of int
        Trial ids in recording order.

    Returns
    -------
    dict
        ``{"train": [...], "a": [...], "b": [...]}``. Position ``i`` in the list goes to
        train when ``i mod 5 < 3``, to A when it is 3, to B when it is 4 (an incomplete last
        group fills train first, then A, then B).

    Raises
    ------
    ConfigError
        With fewer than five trials (A and B would be empty).
    """
    trials = [int(t) for t in trials]
    if len(set(trials)) != len(trials):
        raise ConfigError(f"trial ids repeat: {trials[:20]}", "give each trial once")
    if len(trials) < 5:
        raise ConfigError(f"the groups-of-five protocol needs at least 5 trials, got {len(trials)}",
                          "use more trials, or a shorter data.trial_block_s to cut more blocks")
    out: dict[str, list[int]] = {"train": [], "a": [], "b": []}
    for i, t in enumerate(trials):
        pos = i % 5
        out["train" if pos < 3 else ("a" if pos == 3 else "b")].append(t)
    return out


@dataclass(frozen=True)
class Fold:
    """One leave-one-trial-out fold.

    Attributes
    ----------
    test : int
        The held-out trial.
    val : tuple of int
        Trials held out of training for early stopping.
    train : tuple of int
        The remaining trials.
    """

    test: int
    val: tuple[int, ...]
    train: tuple[int, ...]


def leave_one_trial_out(trials: Sequence[int], *, val_trials: int = 1,
                        folds: Sequence[int] | None = None) -> list[Fold]:
    """Seed 004's leave-one-trial-out folds.

    Parameters
    ----------
    trials : sequence of int
        Trial ids in recording order.
    val_trials : int
        Trials of the training side kept for validation (early stopping): the ones that
        follow the test trial, cyclically.
    folds : sequence of int, optional
        Test trials to run (default every trial, in order).

    Returns
    -------
    list of Fold

    Raises
    ------
    ConfigError
        Too few trials, or a requested fold that is not a trial.
    """
    trials = [int(t) for t in trials]
    n = len(trials)
    if n < val_trials + 2:
        raise ConfigError(f"leave-one-trial-out with {val_trials} validation trial(s) needs at least "
                          f"{val_trials + 2} trials, got {n}", "use more trials or fewer val_trials")
    tests = trials if folds is None else [int(f) for f in folds]
    bad = [f for f in tests if f not in trials]
    if bad:
        raise ConfigError(f"protocol.folds {bad} are not trial ids (trials: {trials})",
                          "list test trials by their ids")
    out = []
    for t in tests:
        i = trials.index(t)
        val = tuple(trials[(i + k) % n] for k in range(1, val_trials + 1))
        train = tuple(x for x in trials if x != t and x not in val)
        out.append(Fold(test=t, val=val, train=train))
    return out


def _pick(attempts: Sequence[dict[str, Any]], key: str, own: str) -> int:
    scores = [a[key]["train"] + a[key][own] for a in attempts]
    scores = [s if np.isfinite(s) else -np.inf for s in scores]
    return int(np.argmax(scores))


def select_ab(attempts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Seed 000's model selection over restarts.

    Parameters
    ----------
    attempts : sequence of dict
        One per restart: ``{"amax": {"train": r2, "a": r2, "b": r2}, "bmax": {...}}``, the
        R² on each set of the step with the best R² on A (``amax``) and on B (``bmax``).

    Returns
    -------
    dict
        ``amax_attempt`` (index of the chosen Amax: highest R²(train) + R²(A)), ``amax_b``
        (its R² on B), ``bmax_attempt``, ``bmax_a``, and ``score`` = mean(Amax(B), Bmax(A)).
        Test sets play no part in choosing.
    """
    if not attempts:
        raise ConfigError("no training attempts to select from", "set protocol.restarts ≥ 1")
    ia = _pick(attempts, "amax", "a")
    ib = _pick(attempts, "bmax", "b")
    amax_b = float(attempts[ia]["amax"]["b"])
    bmax_a = float(attempts[ib]["bmax"]["a"])
    return {"amax_attempt": ia, "amax_b": amax_b, "bmax_attempt": ib, "bmax_a": bmax_a,
            "score": 0.5 * (amax_b + bmax_a)}


def shuffle_frames(x: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seed 000's time-permutation control: frames at ``mask`` swapped among themselves.

    Parameters
    ----------
    x : float (T, C)
        Frames (all trials of a segment).
    mask : bool (T,)
        Frames to permute (the training frames); the others are left intact.
    rng : numpy Generator

    Returns
    -------
    float (T, C)
        A copy; each masked frame replaced by a randomly chosen masked frame (a permutation,
        so envelopes keep their distribution and do not collapse to DC).
    """
    out = np.array(x, copy=True)
    idx = np.flatnonzero(mask)
    out[idx] = x[rng.permutation(idx)]
    return out


def skip_mask(n_frames: int, skip_frames: int) -> np.ndarray:
    """``False`` for the first ``skip_frames`` frames of a segment (transient), else ``True``."""
    m = np.ones(n_frames, dtype=bool)
    m[:max(0, int(skip_frames))] = False
    return m
