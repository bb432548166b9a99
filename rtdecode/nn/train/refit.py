"""Refit on all trials once the A/B protocol has chosen the settings (``protocol.refit``).

The protocol's held-out numbers come from networks fitted on the training trials (3 of every
5) and early-stopped on A or B. The model to ship should use every trial it can: each network
is fitted again, ``protocol.restarts`` times, on the training, A and B trials together, for
the budget the protocol chose — the mean best step (epoch) over the selected restarts on A and
on B — with no early stopping (no trial is left to stop on), and the refits are averaged (a
:class:`~rtdecode.nn.models.StackedDecoder` mean when there is more than one). The linear
control is refitted the same way with the ridge the protocol chose. A refit has no held-out
score of its own; its card carries the protocol's held-out numbers of the model it reproduces
(``<name>_ensemble`` for several restarts, ``<name>`` for one; ``control_linear``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from rtdecode.errors import ModelError
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.config import ModelEntry, TrainConfig
from rtdecode.nn.train.families import build_model, family, fold_target_scaling
from rtdecode.nn.train.regression import (
    Sequences,
    fit_linear,
    fit_regression,
    make_sequences,
    r2_on,
    segment_predictions,
)
from rtdecode.nn.train.results import LinearFit, RegressionFit

logger = logging.getLogger(__name__)

__all__ = ["Refit", "fit_network", "refit_linear", "refit_network"]


@dataclass
class Refit:
    """A model refitted on all trials.

    Attributes
    ----------
    of : str
        The protocol's model whose held-out numbers it carries.
    budget : int
        Steps (full-batch) or epochs (recurrent) per refit; 0 for the closed-form linear control.
    members : int
        Refits averaged.
    train_r2 : list of float
        R² per output of the refitted model on all trials (in-sample).
    seconds : float
    model : nn.Module
        Physical units, ready to export.
    """

    of: str
    budget: int
    members: int
    train_r2: list[float]
    seconds: float
    model: nn.Module

    def to_json(self) -> dict[str, Any]:
        """The refit's facts for ``metrics.json`` (no model)."""
        return {"of": self.of, "budget": self.budget, "members": self.members,
                "r2_all_trials_in_sample": [float(v) for v in self.train_r2],
                "seconds": round(self.seconds, 1)}


def fit_network(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, seqs: Sequences, seed: int,
                desc: str) -> tuple[nn.Module, RegressionFit]:
    """Build one network and fit it with its family's loop (default full-batch Adam)."""
    seed_all(seed)
    model = build_model(entry, data)
    own_fit = family(entry.kind).fit
    if own_fit is not None:
        return model, own_fit(model, seqs, cfg, seed, desc)
    return model, fit_regression(model, seqs, steps=cfg.optim.steps, lr=cfg.optim.lr,
                                 patience=cfg.optim.patience_steps, loss=cfg.loss.kind or "sse",
                                 weight_decay=cfg.optim.weight_decay, progress=cfg.progress, desc=desc)


def _fixed_budget(cfg: TrainConfig, budget: int) -> TrainConfig:
    """``cfg`` with ``budget`` steps and epochs and patience that never stops early."""
    optim = cfg.optim.model_copy(update={"steps": budget, "epochs": budget, "patience_steps": budget + 1,
                                         "patience_epochs": budget + 1})
    return cfg.model_copy(update={"optim": optim})


def refit_network(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, sets: dict[str, list[int]],
                  skip: int, scaling: Any, budget: int, of: str,
                  mean_stack: Callable[[Sequence[nn.Module], int], nn.Module],
                  log: Callable[[str], None]) -> Refit:
    """Fit ``entry`` ``protocol.restarts`` times on all trials for ``budget`` steps; average the fits.

    ``scaling`` is the protocol's target scaling (training-trial statistics), kept so the
    refit's inputs and outputs are scaled exactly as the protocol's models were.
    """
    t0 = time.perf_counter()
    every = sorted(t for v in sets.values() for t in v)
    seqs = make_sequences(data, {"train": every, "a": sets["a"], "b": sets["b"]}, skip_frames=skip,
                          y_mean=scaling.mean, y_std=scaling.std)
    fixed = _fixed_budget(cfg, budget)
    members = []
    for r in range(cfg.protocol.restarts):
        model, fit = fit_network(fixed, entry, data, seqs, cfg.seed + 1000 + r,
                                 f"{entry.name} refit {r + 1}/{cfg.protocol.restarts}")
        if fit.diverged:
            log(f"{entry.name} refit {r + 1}: diverged, left out")
            continue
        fold_target_scaling(model, scaling.mean, scaling.std).eval()
        finish = family(entry.kind).finish
        if finish is not None:
            finish(model, data)
        members.append(model)
    if not members:
        raise ModelError(f"{entry.name}: every refit on all trials diverged", "lower optim.lr")
    model = members[0] if len(members) == 1 else mean_stack(members, data.n_outputs)
    r2 = r2_on(data, segment_predictions(model, data), every, skip)
    log(f"{entry.name} refit on all {len(every)} trials: {len(members)} × {budget} steps, "
        f"in-sample R² {float(np.mean(r2)):.3f}")
    return Refit(of=of, budget=budget, members=len(members), train_r2=list(r2),
                 seconds=time.perf_counter() - t0, model=model)


def refit_linear(data: TrainingData, sets: dict[str, list[int]], skip: int, linear: LinearFit) -> Refit:
    """The linear control refitted on all trials with the protocol's ridge (geometric mean of A's and B's)."""
    t0 = time.perf_counter()
    every = sorted(t for v in sets.values() for t in v)
    ridge = math.sqrt(linear.ridge["a"] * linear.ridge["b"])
    fit = fit_linear(data, {"train": every, "a": every, "b": every}, lags=linear.lags, ridges=[ridge],
                     skip_frames=skip)
    return Refit(of="control_linear", budget=0, members=1, train_r2=list(fit.scores.r2_amax_b),
                 seconds=time.perf_counter() - t0, model=fit.models["a"])
