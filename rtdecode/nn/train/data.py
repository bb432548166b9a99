"""The configured recordings → :class:`~rtdecode.nn.datasets.TrainingData`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtdecode.errors import ConfigError
from rtdecode.nn.datasets import (
    TrainingData,
    flexemg_chain,
    load_recordings,
    make_training_data,
    shuffle_trials,
)
from rtdecode.nn.train.config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["load_training_data"]


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Read the configured recordings and run them through the configured chain."""
    recs, trials = load_recordings(cfg.data.kind, cfg.data.path, trial_block_s=cfg.data.trial_block_s,
                                   max_trials=cfg.data.max_trials, fs=cfg.data.fs_hz)
    if cfg.data.shuffle_trials:
        rng = np.random.default_rng(cfg.seed)
        recs, trials = map(list, zip(*(shuffle_trials(r, t, rng) for r, t in zip(recs, trials, strict=True)),
                                     strict=True))
    chain = list(cfg.preprocessing.chain)
    if cfg.preprocessing.seed004_images:
        amap = recs[0].meta.get("arraymap")
        if amap is None:
            raise ConfigError("preprocessing.seed004_images: arraymap.mat was not found next to the trials",
                              "keep arraymap.mat in the session folder or a parent")
        chain = chain + flexemg_chain(amap)
    prov = {"data": cfg.data.kind, "path": str(cfg.data.path),
            "files": [Path(str(r.meta.get("file", ""))).name for r in recs],
            "trial_order": f"shuffled (seed {cfg.seed})" if cfg.data.shuffle_trials else "as recorded"}
    return make_training_data(recs, trials, chain, task=cfg.task, targets=cfg.data.targets, provenance=prov)
