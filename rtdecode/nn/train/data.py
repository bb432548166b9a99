"""The configured recordings → :class:`~rtdecode.nn.datasets.TrainingData`."""

from __future__ import annotations

import logging

from rtdecode.errors import ConfigError
from rtdecode.io.labelled import load_labelled
from rtdecode.nn.datasets import TrainingData, flexemg_chain, grid_spec, make_training_data
from rtdecode.nn.train.config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["load_training_data"]


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Read the configured recordings and run them through the configured chain."""
    labelled = load_labelled(cfg.data)
    recs = labelled.recordings
    chain = list(cfg.preprocessing.chain)
    pre = cfg.preprocessing
    if pre.seed004_images or pre.electrode_grid:
        amap = recs[0].meta.get("arraymap")
        if amap is None:
            field = "seed004_images" if pre.seed004_images else "electrode_grid"
            raise ConfigError(f"preprocessing.{field}: arraymap.mat was not found next to the trials",
                              "keep arraymap.mat in the session folder or a parent")
        chain = chain + (flexemg_chain(amap) if pre.seed004_images else [grid_spec(amap)])
    prov = {"data": cfg.data.kind, "path": str(cfg.data.path), "files": [f.name for f in labelled.files],
            "data_spec": cfg.data.model_dump(mode="json", exclude_defaults=True)}
    return make_training_data(recs, labelled.trials, chain, task=cfg.task, targets=cfg.data.targets,
                              class_names=labelled.class_names, provenance=prov)
