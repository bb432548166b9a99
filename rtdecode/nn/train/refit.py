"""Fit the exported model once more on every trial, with the settings the protocol chose.

The protocol's numbers measure a model on data it did not see; the shipped file may then use
all the data (``export.all_data``). Its metadata keeps the protocol's held-out numbers, and
the provenance says it was refitted and on what.

- the LDA (``lda``): the same features and head on every labelled sample;
- a leave-one-trial-out network: trained on every trial's frames for the median over the
  folds of the epoch count early stopping chose (no validation trial left);
- an A/B protocol model (:func:`~rtdecode.nn.train.ab.refit_ab`): a network or its ensemble
  for the selected pair's mean best step, the linear control with the chosen ridge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from rtdecode.errors import ConfigError
from rtdecode.nn.train.ab import refit_ab
from rtdecode.nn.train.classification import fit_classifier
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.config import TrainConfig
from rtdecode.nn.train.families import build_model
from rtdecode.nn.train.loto import lda_decoder, lda_inputs, subsample
from rtdecode.nn.train.results import AbRun, LotoRun, RunResult

logger = logging.getLogger(__name__)

__all__ = ["refit_all"]


def _refit_lda(cfg: TrainConfig, result: RunResult) -> str:
    inp = lda_inputs(cfg, result.data)
    rows = np.flatnonzero(inp.trial >= 0)
    result.models["lda"] = lda_decoder(cfg, result.data).fit_features(
        inp.feats, inp.y, rows, n_inputs=inp.n_inputs, n_classes=result.data.n_outputs)
    return f"every labelled sample of the {len(result.data.trials)} trials"


def _refit_network(cfg: TrainConfig, result: RunResult, name: str, run: LotoRun) -> str:
    entry = next(e for e in cfg.models if e.name == name)
    epochs = int(np.median([f.best_epoch + 1 for f in run.models[name].folds]))
    data = result.data
    rng = np.random.default_rng(cfg.seed)
    x, y = subsample(*data.frames(data.trials), cfg.optim.max_train_frames, rng)
    xv, yv = subsample(x, y, cfg.optim.max_val_frames, rng)  # monitored only, not used to stop
    seed_all(cfg.seed)
    model = build_model(entry, data)
    o = cfg.optim
    fit_classifier(model, x, y, xv, yv, epochs=epochs, batch_size=o.batch_size, lr=o.lr, patience=epochs,
                   weight_decay=o.weight_decay, rng=rng, progress=cfg.progress, desc=f"{name} all trials",
                   early_stopping=False)
    result.models[name] = model
    return f"{x.shape[0]} frames of all {len(data.trials)} trials, {epochs} epochs (the folds' median)"


def refit_all(cfg: TrainConfig, result: RunResult, name: str,
              log: Callable[[str], None] = logger.info) -> str:
    """Replace ``result.models[name]`` by the same model fitted on every trial; returns what it was fitted on.

    Raises
    ------
    ConfigError
        For an ab stack (its head is fitted on held-out frames).
    """
    run = result.run
    if isinstance(run, AbRun):
        return refit_ab(cfg, result, name, log)
    if not isinstance(run, LotoRun):
        raise ConfigError("export.all_data: unknown protocol run", "report this as a bug")
    what = _refit_lda(cfg, result) if name == "lda" else _refit_network(cfg, result, name, run)
    log(f"{name}: refitted on {what}")
    return what
