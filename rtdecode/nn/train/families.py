"""Model families ``rtdecode train`` can build: one registry, family name → builder.

A :class:`Family` says what a network does (classify or regress) and how its constructor
arguments are completed from the training data; the network itself is built by
:func:`rtdecode.nn.models.model_from_spec` (its class must be in
:data:`rtdecode.nn.models.MODEL_TYPES`). Adding a family is one ``fill`` function and one
:func:`register_family` call; the config schema (``models[].kind``), the task check and
:func:`build_model` read this registry, nothing else lists the families.

Regression families also name their last (linear) layer, into which
:func:`fold_target_scaling` folds the z-scoring of the targets after training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from rtdecode.errors import ConfigError, ModelError
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.gamma import GammaConv1d
from rtdecode.nn.layers import CausalConv1d
from rtdecode.nn.models import AllConvNet, FrameMLP, GammaCNN, LinearDecoder, SConvNet, model_from_spec
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.recurrent import fill_recurrent, finish_recurrent, fit_recurrent_cfg, recurrent_last
from rtdecode.nn.train.regression import Sequences, fit_regression
from rtdecode.nn.train.results import RegressionFit

if TYPE_CHECKING:
    from rtdecode.nn.train.config import ModelEntry, TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["FAMILIES", "Family", "Task", "build_model", "family", "fit_network", "fold_target_scaling",
           "kinds_of", "register_family", "regression_run"]

Task = Literal["regression", "classification"]

#: ``fill(config, data, where)`` → the complete constructor arguments (``where`` names the
#: config field in error messages).
Fill = Callable[[dict[str, Any], TrainingData, str], dict[str, Any]]


@dataclass(frozen=True)
class Family:
    """One trainable model family.

    Attributes
    ----------
    name : str
        ``models[].kind`` in a training config, and the model class name in
        :data:`~rtdecode.nn.models.MODEL_TYPES`.
    task : {"regression", "classification"}
        Regression families train under the ``ab`` protocol, classifiers under ``loto``.
    fill : callable
        Completes the constructor arguments from the data (sizes, rates, grid).
    last_layer : callable, optional
        Regression: the model's linear output layer (a :class:`CausalConv1d`,
        :class:`GammaConv1d` or ``nn.Linear``-like module with ``weight``/``bias``).
    session_part : callable, optional
        The session-specific modules ``rtdecode calibrate`` refits on a short recording of a
        new session (the rest stays frozen); ``None``: the family cannot be recalibrated.
    fit : callable, optional
        Regression: the fitting loop of one restart, ``fit(model, seqs, cfg, seed, desc)``
        (default: full-batch Adam, :func:`~rtdecode.nn.train.regression.fit_regression`).
    finish : callable, optional
        Run on every trained model in physical units, ``finish(model, data)`` (in place; e.g.
        a recurrent network's memory horizon is measured).
    """

    name: str
    task: Task
    fill: Fill
    last_layer: Callable[[nn.Module], nn.Module] | None = None
    session_part: Callable[[nn.Module], list[nn.Module]] | None = None
    fit: Callable[[nn.Module, Sequences, TrainConfig, int, str], RegressionFit] | None = None
    finish: Callable[[nn.Module, TrainingData], None] | None = None


#: Registered families by name (in registration order).
FAMILIES: dict[str, Family] = {}


def register_family(fam: Family) -> Family:
    """Add (or replace) a family in :data:`FAMILIES`; returns it."""
    FAMILIES[fam.name] = fam
    return fam


def family(kind: str) -> Family:
    """The registered family ``kind``.

    Raises
    ------
    ConfigError
        For an unknown kind (the message lists the known ones).
    """
    try:
        return FAMILIES[kind]
    except KeyError:
        raise ConfigError(f"unknown model kind {kind!r}", f"use one of {', '.join(FAMILIES)}") from None


def kinds_of(task: Task) -> list[str]:
    """Names of the registered families of one task."""
    return [f.name for f in FAMILIES.values() if f.task == task]


def build_model(entry: ModelEntry, data: TrainingData) -> nn.Module:
    """Build one configured network for ``data`` (fresh weights).

    The family's ``fill`` completes the constructor arguments (e.g. ``n_in`` / ``rate_hz``
    for a GammaCNN, ``grid_shape`` / ``n_classes`` for a classifier) where not given.

    Raises
    ------
    ConfigError
        When the configured sizes do not fit the data; the message names the field.
    """
    where = f"models[{entry.name}].config"
    c = family(entry.kind).fill(dict(entry.config), data, where)
    n_in = c.get("n_in")
    if n_in is not None and int(n_in) != data.n_inputs:
        raise ConfigError(f"{where}.n_in = {n_in} but the chain outputs {data.n_inputs} channels",
                          "leave n_in out (it is filled from the data)")
    try:
        return model_from_spec({"kind": entry.kind, "config": c})
    except ModelError as exc:
        raise ConfigError(f"{where}: {exc.what}", exc.fix) from None


def fit_network(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, seqs: Sequences, seed: int,
                desc: str) -> tuple[nn.Module, RegressionFit]:
    """Build one regression network (seeded) and fit it with its family's loop (default full-batch Adam)."""
    seed_all(seed)
    model = build_model(entry, data)
    fit = regression_run(model, cfg.progress, cfg=cfg, kind=entry.kind, seqs=seqs, seed=seed, desc=desc)
    return model, fit


def regression_run(model: nn.Module, progress: bool, *, cfg: TrainConfig, kind: str, seqs: Sequences,
                   seed: int, desc: str) -> RegressionFit:
    """Fit a built regression network with its family's loop (a worker job's runner too)."""
    own_fit = family(kind).fit
    if own_fit is not None:
        return own_fit(model, seqs, cfg.model_copy(update={"progress": progress}), seed, desc)
    return fit_regression(model, seqs, steps=cfg.optim.steps, lr=cfg.optim.lr,
                          patience=cfg.optim.patience_steps, loss=cfg.loss.kind or "sse",
                          weight_decay=cfg.optim.weight_decay, progress=progress, desc=desc)


def fold_target_scaling(model: nn.Module, mean: np.ndarray, std: np.ndarray) -> nn.Module:
    """Make a model trained on z-scored targets output ``y = std · z + mean`` (in place).

    The family's last layer is linear (a Gamma or free causal conv, or a dense layer, with
    bias), so its weights (or Gamma areas α) are multiplied by ``std`` and its bias becomes
    ``std·b + mean``.
    """
    fam = FAMILIES.get(type(model).__name__)
    if fam is None or fam.last_layer is None:
        raise ModelError(f"cannot rescale the output of a {type(model).__name__}", "regression models only")
    layer = fam.last_layer(model)
    s = torch.as_tensor(np.asarray(std, dtype=np.float32))
    m = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    with torch.no_grad():
        if isinstance(layer, GammaConv1d):
            layer.alpha.mul_(s[:, None])
        else:
            weight = layer.weight
            assert isinstance(weight, torch.Tensor)
            weight.mul_(s.reshape(-1, *([1] * (weight.dim() - 1))))
        bias = getattr(layer, "bias", None)
        if bias is None:
            raise ModelError("the last layer has no bias; cannot add the target mean", "use bias=True")
        bias.mul_(s).add_(m)
    return model


# -- the seed papers' families -----------------------------------------------------------------


def _fill_gamma(c: dict[str, Any], data: TrainingData, where: str) -> dict[str, Any]:
    k = data.n_outputs
    c.setdefault("n_in", data.n_inputs)
    c.setdefault("rate_hz", data.frame_rate_hz)
    c.setdefault("shared_sizes", [6, 3, k])
    if list(c["shared_sizes"])[-1:] != [k]:
        raise ConfigError(f"{where}.shared_sizes ends with {list(c['shared_sizes'])[-1:]} but the data "
                          f"has {k} targets", f"make the last shared size {k}")
    return c


def _fill_linear(c: dict[str, Any], data: TrainingData, where: str) -> dict[str, Any]:
    c.setdefault("n_in", data.n_inputs)
    c.setdefault("n_out", data.n_outputs)
    if "taps" not in c:
        raise ConfigError(f"{where}.taps is required for a LinearDecoder", "give the lags in frames")
    return c


def _fill_grid_classifier(c: dict[str, Any], data: TrainingData, where: str) -> dict[str, Any]:
    if data.grid_shape is None:
        raise ConfigError(f"{where}: this classifier needs an electrode grid, the chain has no grid stage",
                          "add a 'grid' stage (or preprocessing.seed004_images = true)")
    c.setdefault("grid_shape", list(data.grid_shape))
    c.setdefault("n_classes", data.n_outputs)
    return c


def _fill_frame_classifier(c: dict[str, Any], data: TrainingData, where: str) -> dict[str, Any]:
    c.setdefault("n_in", data.n_inputs)
    c.setdefault("n_classes", data.n_outputs)
    return c


def _gamma_session(model: nn.Module) -> list[nn.Module]:
    assert isinstance(model, GammaCNN)
    return [model.features[0]]  # seed 000's session-dependent 1×1 feature layers (the exported stack)


def _image_session(model: nn.Module) -> list[nn.Module]:
    """Input normalisation and the first conv block of seed 004's ConvNets."""
    assert isinstance(model, (SConvNet, AllConvNet))
    return [model.input_bn, model.features[0]]


def _mlp_session(model: nn.Module) -> list[nn.Module]:
    """Input normalisation and the first layer (Linear + its BN) of a FrameMLP."""
    assert isinstance(model, FrameMLP)
    return [model.input_bn, model.layers[0], model.layers[1]]


def _gamma_last(model: nn.Module) -> nn.Module:
    assert isinstance(model, GammaCNN)
    layer: nn.Module = model.shared.layers[-1]
    if not isinstance(layer, (GammaConv1d, CausalConv1d)):  # pragma: no cover - built that way
        raise ModelError(f"unexpected last layer {type(layer).__name__}", "report this as a bug")
    return layer


def _linear_last(model: nn.Module) -> nn.Module:
    assert isinstance(model, LinearDecoder)
    return model.conv


register_family(Family("GammaCNN", "regression", _fill_gamma, _gamma_last, _gamma_session))
register_family(Family("LinearDecoder", "regression", _fill_linear, _linear_last, lambda m: [m]))
register_family(Family("SConvNet", "classification", _fill_grid_classifier, session_part=_image_session))
register_family(Family("AllConvNet", "classification", _fill_grid_classifier, session_part=_image_session))
register_family(Family("FrameMLP", "classification", _fill_frame_classifier, session_part=_mlp_session))
register_family(Family("GRUDecoder", "regression", fill_recurrent, recurrent_last, fit=fit_recurrent_cfg,
                       finish=finish_recurrent))
register_family(Family("LSTMDecoder", "regression", fill_recurrent, recurrent_last, fit=fit_recurrent_cfg,
                       finish=finish_recurrent))
