"""Recalibrate a trained network to a new session from a short labelled recording.

Only the family's session-specific part (:attr:`~rtdecode.nn.train.families.Family.session_part`)
is fitted — seed 000's 1×1 feature layers of a GammaCNN, the input normalisation and first
layer of the ConvNets and the FrameMLP; the rest keeps its weights, and its batch norm keeps
its statistics (the session part's batch norm re-estimates them from the new session). The
frames are the model file's own chain over the calibration recordings, exactly as the daemon
will compute them.

- classifiers: minibatch Adam with cross-entropy; with two or more calibration recordings the
  number of epochs is chosen by leave-one-recording-out over them (each held-out recording's
  accuracy after every epoch of a fit on the others; the epoch count with the best mean),
  then the part is fitted on all of them for that many epochs; with one, ``epochs``. This is
  done ``members`` times (default 3) with different seeds, and the recalibrated copies are
  served as one ensemble (:class:`~rtdecode.nn.models.StackedDecoder`, mean logits): a fit on
  two short trials lands on different weights for every seed, and the average of a few is
  steadier than any one (docs/models.md, recalibration);
- regressors: full-batch Adam on the z-scored targets, the step with the best fit kept.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rtdecode.errors import ModelError
from rtdecode.io.labelled import LabelledSet
from rtdecode.nn.checkpoint import load_checkpoint
from rtdecode.nn.datasets import TrainingData, make_training_data
from rtdecode.nn.models import StackedDecoder
from rtdecode.nn.sidecar import sidecar_path
from rtdecode.nn.train.classification import fit_classifier, predict_proba
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.families import FAMILIES
from rtdecode.nn.train.regression import fit_regression, make_sequences, r2_on, segment_predictions
from rtdecode.runtime.metadata import ModelMetadata

logger = logging.getLogger(__name__)

__all__ = ["Calibrated", "calibrate_network", "calibration_data", "load_network"]


@dataclass
class Calibrated:
    """A recalibrated network and what was done.

    Attributes
    ----------
    model : nn.Module
    data : TrainingData
        The calibration frames (for the bounds).
    session : int
        The exported GammaCNN session stack.
    report : dict
        Fitted modules, parameters, epochs / steps, the fit on the calibration frames.
    """

    model: nn.Module
    data: TrainingData
    session: int
    report: dict[str, Any]


def load_network(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The torch model of an exported ``.onnx`` (its ``.torch.npz`` sidecar) and the sidecar's extras."""
    side = sidecar_path(path)
    if not side.exists():
        raise ModelError(f"{path.name} has no torch sidecar ({side.name}) to recalibrate",
                         "keep the .torch.npz written next to the model at export")
    model, _spec, extra = load_checkpoint(side)
    return model, extra


def calibration_data(meta: ModelMetadata, ls: LabelledSet) -> TrainingData:
    """The calibration recordings through the model's own chain, with the model's outputs as targets."""
    names = [o.name for o in meta.outputs]
    cls = names if meta.task == "classification" else None
    return make_training_data(ls.recordings, ls.trials, meta.preprocessing, task=meta.task,
                              targets=None if cls else names, class_names=cls,
                              output_units=None if cls else [o.unit for o in meta.outputs],
                              provenance={"files": [f.name for f in ls.files]})


def _freeze(model: nn.Module, part: list[nn.Module]) -> tuple[list[str], Any]:
    """Leave only ``part`` trainable; returns its parameter names and a train-mode function that keeps
    every other batch norm in eval mode (its statistics are the trained sessions')."""
    own = {id(p) for m in part for p in m.parameters()}
    names = [n for n, p in model.named_parameters() if id(p) in own]
    for p in model.parameters():
        p.requires_grad_(id(p) in own)
    part_modules = {id(m) for root in part for m in root.modules()}
    frozen_bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and id(m) not in part_modules]

    def train_mode(m: nn.Module) -> None:
        m.train()
        for bn in frozen_bn:
            bn.eval()

    return names, train_mode


class _ZScored(nn.Module):
    """A regressor's outputs z-scored with the calibration targets' statistics (the fit's scale)."""

    def __init__(self, model: nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32)[None, :, None])
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32)[None, :, None])

    def forward(self, x: Tensor) -> Tensor:
        return (self.model(x) - self.mean) / self.std


def _fit_part(model: nn.Module, part_of: Any, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
              *, epochs: int, lr: float, batch_size: int, seed: int) -> list[float]:
    """Fit ``part_of(model)`` for ``epochs``; the accuracy on (xv, yv) after each epoch."""
    seed_all(seed)
    _, train_mode = _freeze(model, part_of(model))
    fit = fit_classifier(model, x, y, xv, yv, epochs=epochs, batch_size=batch_size, lr=lr, patience=epochs,
                         rng=np.random.default_rng(seed), early_stopping=False, train_mode=train_mode)
    return fit.history.val_acc


def _choose_epochs(model: nn.Module, part_of: Any, data: TrainingData, *, epochs: int, lr: float,
                   batch_size: int, seed: int) -> tuple[int, list[float]]:
    """Leave one calibration trial out: the epoch count with the best mean held-out accuracy."""
    curves = []
    for held in data.trials:
        rest = [t for t in data.trials if t != held]
        trial_model = copy.deepcopy(model)
        curves.append(_fit_part(trial_model, part_of, *data.frames(rest), *data.frames([held]), epochs=epochs,
                                lr=lr, batch_size=batch_size, seed=seed))
    mean = np.mean(curves, axis=0)
    return int(np.argmax(mean)) + 1, [float(v) for v in mean]


def _classifier(model: nn.Module, part_of: Any, data: TrainingData, *, epochs: int, lr: float,
                batch_size: int, seed: int) -> dict[str, Any]:
    x, y = data.frames(data.trials)
    before = float(np.mean(np.argmax(predict_proba(model, x), axis=1) == y))
    report: dict[str, Any] = {"frames": int(x.shape[0]), "calibration_accuracy_before": before}
    if len(data.trials) > 1:
        epochs, curve = _choose_epochs(model, part_of, data, epochs=epochs, lr=lr, batch_size=batch_size,
                                       seed=seed)
        report["held_out_accuracy_per_epoch"] = curve  # leave one calibration trial out, mean
    _fit_part(model, part_of, x, y, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    after = float(np.mean(np.argmax(predict_proba(model, x), axis=1) == y))
    return {**report, "epochs": epochs, "calibration_accuracy_after": after}


def _classifier_members(base: nn.Module, part_of: Any, data: TrainingData, members: int, *, epochs: int,
                        lr: float, batch_size: int, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """``members`` recalibrations of ``base`` (seeds ``seed`` …); with more than one, their ensemble."""
    fitted, reports = [], []
    for i in range(members):
        m = copy.deepcopy(base)
        reports.append(_classifier(m, part_of, data, epochs=epochs, lr=lr, batch_size=batch_size,
                                   seed=seed + i))
        fitted.append(m)
    if members == 1:
        return fitted[0], reports[0]
    ens = StackedDecoder.average(fitted).eval()
    x, y = data.frames(data.trials)
    after = float(np.mean(np.argmax(predict_proba(ens, x), axis=1) == y))
    return ens, {"frames": reports[0]["frames"], "members": members,
                 "seeds": [seed + i for i in range(members)],
                 "calibration_accuracy_before": reports[0]["calibration_accuracy_before"],
                 "epochs": [r["epochs"] for r in reports], "calibration_accuracy_after": after,
                 "member_reports": reports}


def _regressor(model: nn.Module, data: TrainingData, *, steps: int, lr: float) -> dict[str, Any]:
    _, y = data.frames(data.trials)
    mean, std = y.mean(axis=0), np.where(y.std(axis=0) > 0, y.std(axis=0), 1.0)
    sets = {"train": data.trials}
    seqs = make_sequences(data, sets, skip_frames=0, y_mean=mean, y_std=std)
    before = r2_on(data, segment_predictions(model, data), data.trials, 0)
    wrapped = _ZScored(model, mean, std)
    fit = fit_regression(wrapped, seqs, steps=steps, lr=lr, patience=steps, loss="mse", select=("train",))
    best = fit.best["train"]
    if best.state is not None:
        wrapped.load_state_dict(best.state)
    after = r2_on(data, segment_predictions(model, data), data.trials, 0)
    return {"frames": int(y.shape[0]), "steps": fit.steps_run, "best_step": best.step,
            "seconds": round(fit.seconds, 1), "calibration_r2_before": [float(v) for v in before],
            "calibration_r2_after": [float(v) for v in after]}


def calibrate_network(path: Path, meta: ModelMetadata, ls: LabelledSet, *, epochs: int = 120,
                      lr: float = 1e-3, batch_size: int = 128, steps: int = 300, seed: int = 0,
                      members: int | None = None) -> Calibrated:
    """Fit the session-specific part of the network behind ``path`` on the labelled recordings ``ls``.

    ``members``: a classifier is recalibrated this many times (seeds ``seed`` …, default 3) and
    returned as their mean-logit ensemble; a regressor once (its full-batch fit is deterministic).

    Raises
    ------
    ModelError
        No sidecar, a family without a session-specific part, or ``members`` for a regressor.
    """
    model, extra = load_network(path)
    fam = FAMILIES.get(type(model).__name__)
    if fam is None or fam.session_part is None:
        raise ModelError(f"a {type(model).__name__} has no session-specific part to recalibrate",
                         f"recalibrate one of {[f.name for f in FAMILIES.values() if f.session_part]} "
                         "(an ensemble from an earlier calibration: recalibrate the model it came from, "
                         "named in its provenance.calibrated_from)")
    if members is not None and members < 1:
        raise ModelError(f"members = {members}", "give --members 1 or more")
    if meta.task != "classification" and members not in (None, 1):
        raise ModelError(f"members = {members} for a regressor, whose recalibration is deterministic",
                         "leave --members out (1) for a regression model")
    data = calibration_data(meta, ls)
    seed_all(seed)
    names, _ = _freeze(model, fam.session_part(model))
    fitted = sorted({n.rsplit(".", 1)[0] for n in names})
    n_params = int(sum(p.numel() for n, p in model.named_parameters() if n in set(names)))
    if meta.task == "classification":
        model, report = _classifier_members(model, fam.session_part, data, 3 if members is None else members,
                                            epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    else:
        report = _regressor(model, data, steps=steps, lr=lr)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    report.update(fitted=fitted, parameters=n_params)
    logger.info("%s: recalibrated %s on %d frames (%s)", meta.name, fitted, report["frames"],
                f"{report['members']} members" if "members" in report else "one fit")
    return Calibrated(model=model, data=data, session=int(extra.get("session", 0)), report=report)
