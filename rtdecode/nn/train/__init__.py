"""Training of the decoders: validated config, data, fitting loops, protocol runs.

``rtdecode train CONFIG.toml`` (:mod:`rtdecode.commands.train`) reads a
:class:`~rtdecode.nn.train.config.TrainConfig`, builds the training arrays with the
service's own causal chain (:mod:`rtdecode.nn.train.data`), and runs one protocol:

- :mod:`~rtdecode.nn.train.config`: the TOML schema and its loader;
- :mod:`~rtdecode.nn.train.families`: the model-family registry (family name → builder);
- :mod:`~rtdecode.nn.train.data`: the configured recordings → training data;
- :mod:`~rtdecode.nn.train.regression`, :mod:`~rtdecode.nn.train.classification`: the
  fitting loops (full-batch Adam and the ridge Wiener control; minibatch cross-entropy);
- :mod:`~rtdecode.nn.train.ab` (seed 000, regression) and :mod:`~rtdecode.nn.train.loto`
  (seed 004, classification): the protocol runs;
- :mod:`~rtdecode.nn.train.results`: their typed results (``to_json()`` gives
  ``metrics.json``).

Targets of a regression are z-scored with training statistics while fitting; the inverse
is folded into the last layer afterwards, so a returned model outputs physical units.
"""

from __future__ import annotations

from collections.abc import Callable

from rtdecode.metrics import confusion
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.train.ab import run_ab
from rtdecode.nn.train.classification import fit_classifier, predict_proba, smoothed_accuracy
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.config import ModelEntry, TrainConfig, load_train_config
from rtdecode.nn.train.data import load_training_data
from rtdecode.nn.train.families import FAMILIES, Family, build_model, fold_target_scaling, register_family
from rtdecode.nn.train.loto import run_loto
from rtdecode.nn.train.regression import fit_linear, fit_regression, make_sequences, masked_r2, r2_score
from rtdecode.nn.train.results import RunResult

__all__ = [
    "FAMILIES",
    "Family",
    "ModelEntry",
    "RunResult",
    "TrainConfig",
    "build_model",
    "confusion",
    "fit_classifier",
    "fit_linear",
    "fit_regression",
    "fold_target_scaling",
    "load_train_config",
    "load_training_data",
    "make_sequences",
    "masked_r2",
    "predict_proba",
    "r2_score",
    "register_family",
    "run_ab",
    "run_loto",
    "run_protocol",
    "seed_all",
    "smoothed_accuracy",
]

#: The protocol run of each ``protocol.kind``.
PROTOCOLS: dict[str, Callable[..., RunResult]] = {"ab": run_ab, "loto": run_loto}


def run_protocol(cfg: TrainConfig, data: TrainingData, log: Callable[[str], None] | None = None) -> RunResult:
    """Run the configured protocol (``ab`` or ``loto``)."""
    run = PROTOCOLS[cfg.protocol.kind]
    return run(cfg, data) if log is None else run(cfg, data, log)
