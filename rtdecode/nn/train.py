"""Training of the seed papers' decoders: validated config, fitting loops, protocol runs.

``rtdecode train CONFIG.toml`` (:mod:`rtdecode.commands.train`) reads a :class:`TrainConfig`,
builds the training arrays with the service's own causal chain
(:mod:`rtdecode.nn.datasets`), and runs one protocol (:mod:`rtdecode.nn.protocols`):

``ab`` (seed 000, regression)
    Full-batch Adam on the training trials; every step's model is scored (R²) on the
    training set and on cross-validation sets A and B; per restart the best-on-A and
    best-on-B steps are kept (early stopping), and :func:`~rtdecode.nn.protocols.select_ab`
    picks the reported models. Loss: squared error over the training frames, excluding
    the first ``skip_s`` of each continuous segment (the network's transient). Controls:
    a ridge linear (Wiener) decoder over ``linear_history_s`` and the first network
    trained on time-shuffled inputs.
``loto`` (seed 004, classification)
    Leave one trial out; per fold each network is trained with minibatch Adam and
    cross-entropy, early-stopped on a validation trial, and scored per sample on the
    test trial, raw and after the service's causal probability smoothing; an LDA on
    time-domain features can run beside it on the same folds.

Targets of a regression are z-scored with training statistics while fitting; the inverse
is folded into the last layer afterwards, so a returned model outputs physical units.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import Tensor, nn

from rtdecode.config import read_document
from rtdecode.decoders.linear import lagged_design
from rtdecode.decoders.smoothing import ProbabilitySmoother, window_frames
from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError, ModelError
from rtdecode.metrics import r2_per_column
from rtdecode.nn.baselines import LDA, td_features
from rtdecode.nn.datasets import (
    TrainingData,
    flexemg_chain,
    load_recordings,
    make_training_data,
    standardize_spec,
)
from rtdecode.nn.gamma import GammaConv1d
from rtdecode.nn.layers import CausalConv1d
from rtdecode.nn.models import GammaCNN, LinearDecoder, StackedDecoder, count_parameters, model_from_spec
from rtdecode.nn.protocols import (
    groups_of_five,
    leave_one_trial_out,
    select_ab,
    shuffle_frames,
    skip_mask,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIERS",
    "RunResult",
    "TrainConfig",
    "build_model",
    "fit_classifier",
    "fit_linear",
    "fit_regression",
    "load_train_config",
    "load_training_data",
    "masked_r2",
    "predict_proba",
    "r2_score",
    "run_ab",
    "run_loto",
    "run_protocol",
]

#: Model kinds that classify frames; the others regress.
CLASSIFIERS = ("SConvNet", "AllConvNet")


# ============================================================================ configuration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Which recordings to train on."""

    kind: Literal["flexemg", "monkey_reach", "otb", "npz", "recording"] = Field(
        description="dataset layout (see rtdecode.nn.datasets.load_recordings)")
    path: Path = Field(description="file or folder; relative to the config file's folder")
    targets: list[str] | None = Field(None, description="regression targets by name (default all)")
    trial_block_s: float | None = Field(None, gt=0, description="cut a recording without trial ids "
                                        "into trials of this length, s")
    max_trials: int | None = Field(None, ge=1, description="flexemg: use only the first N trial files")
    fs_hz: float | None = Field(None, gt=0, description="rate of files that do not store one, Hz")


class PreprocessingTrainConfig(_Strict):
    """The causal chain (the service's stages) and what is fitted on the training trials."""

    chain: list[dict[str, Any]] = Field(default_factory=list, description="stage specs (rtdecode.dsp)")
    seed004_images: bool = Field(False, description="flexemg: append seed 004's chain (band-stop 45-55 Hz, "
                                 "[-2.5, 2.5] mV → [0, 1], electrode grid from arraymap.mat) after "
                                 "`chain` (which may add e.g. a high-pass in front)")
    standardize: bool = Field(False, description="append a standardize stage with the training trials' "
                              "mean and std (ab protocol)")


class ModelEntry(_Strict):
    """One network to train (rtdecode.nn.models)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["GammaCNN", "LinearDecoder", "SConvNet", "AllConvNet"]
    config: dict[str, Any] = Field(default_factory=dict, description="constructor arguments; n_in, "
                                   "rate_hz, grid_shape, n_classes / n_out are filled from the data")


class OptimConfig(_Strict):
    """Adam and the stopping rules."""

    lr: float = Field(1e-3, gt=0, description="Adam learning rate (seed 000: 0.1, seed 004: 1e-3)")
    weight_decay: float = Field(0.0, ge=0)
    steps: int = Field(1000, ge=1, description="ab: full-batch steps per restart")
    patience_steps: int = Field(200, ge=1, description="ab: stop a restart when neither A nor B improved "
                                "for this many steps")
    epochs: int = Field(100, ge=1, description="loto: epochs at most")
    patience_epochs: int = Field(5, ge=1, description="loto: stop after this many epochs without a "
                                 "lower validation loss")
    batch_size: int = Field(256, ge=2)
    max_train_frames: int | None = Field(None, ge=10, description="loto: random subset of training "
                                         "frames per fold (bounded runs)")
    max_val_frames: int | None = Field(None, ge=10, description="loto: random subset of validation frames")


class LossConfig(_Strict):
    """Training loss."""

    kind: Literal["sse", "mse", "cross_entropy"] | None = Field(
        None, description="default: sse for regression, cross_entropy for classification")
    skip_s: float = Field(0.0, ge=0, description="regression: frames in the first skip_s of each "
                          "continuous segment are left out of the loss and the scores")


class ProtocolConfig(_Strict):
    """Evaluation protocol."""

    kind: Literal["ab", "loto"] = Field(description="ab: seed 000 (groups of five, A/B); "
                                        "loto: seed 004 (leave one trial out)")
    restarts: int = Field(1, ge=1, description="ab: attempts per network (seed 000: 16)")
    controls: list[Literal["linear", "shuffled"]] = Field(default_factory=list,
                                                         description="ab: seed 000's controls")
    linear_history_s: float = Field(0.3, gt=0, description="history of the linear control, s")
    linear_ridge: list[float] = Field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                                      description="ridge values tried (chosen on the validation set)")
    folds: list[int] | None = Field(None, description="loto: test trials to run (default all)")
    val_trials: int = Field(1, ge=1, description="loto: trials held out for early stopping")
    smoothing_s: list[float] = Field(default_factory=list, description="loto: causal smoothing windows, s")
    smoothing_methods: list[Literal["average", "majority"]] = Field(
        default_factory=lambda: ["average", "majority"])  # type: ignore[arg-type]
    ensemble: bool = Field(False, description="ab: also score each network as the mean of all its "
                           "restarts (the Amax members tested on B, the Bmax members on A); "
                           "exportable as '<name>_ensemble'")
    stack_linear: bool = Field(False, description="ab: also score the first network's ensemble stacked "
                               "with the linear control (a per-frame linear mix of both, least squares "
                               "on A for B and on B for A); needs controls = ['linear']; exportable as "
                               "'<name>_ensemble_linear'")
    baselines: list[Literal["lda"]] = Field(default_factory=list, description="loto: LDA on MAV, WL, ZC, SSC")
    lda_window_s: float = Field(0.2, gt=0)
    lda_threshold: float = Field(0.01, ge=0, description="ZC / SSC dead zone, units of the filtered input")
    lda_stride: int = Field(10, ge=1, description="use every n-th training window for the LDA fit")

    @field_validator("linear_ridge")
    @classmethod
    def _ridge(cls, v: list[float]) -> list[float]:
        if not v or any(r < 0 for r in v):
            raise ValueError("give at least one ridge value, all ≥ 0")
        return v


class ExportConfig(_Strict):
    """The streaming ONNX model written at the end."""

    enabled: bool = True
    model: str | None = Field(None, description="models[].name to export (default the first), or "
                              "'control_linear' for the linear control")
    path: Path | None = Field(None, description="output .onnx (default <out>/<name>.onnx); relative "
                              "to the config file's folder")
    name: str | None = Field(None, description="model name in the metadata (default the run name)")
    fold: int | None = Field(None, description="loto: the test trial whose fold model is exported "
                             "(default the first fold)")
    verify: bool = Field(True, description="run rtdecode verify on the exported file")


class TrainConfig(_Strict):
    """``rtdecode train`` configuration (TOML)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    threads: int = Field(1, ge=1, le=64, description="torch CPU threads")
    out_dir: Path | None = Field(None, description="output folder (default out/train/<name>)")
    plots: bool = True
    progress: bool = True
    description: str = ""
    data: DataConfig
    preprocessing: PreprocessingTrainConfig = Field(default_factory=PreprocessingTrainConfig)
    models: list[ModelEntry] = Field(min_length=1)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    protocol: ProtocolConfig
    export: ExportConfig = Field(default_factory=ExportConfig)

    @property
    def task(self) -> Literal["regression", "classification"]:
        """classification when the networks are S-ConvNets / All-ConvNets, else regression."""
        return "classification" if self.models[0].kind in CLASSIFIERS else "regression"

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainConfig:
        kinds = {m.kind in CLASSIFIERS for m in self.models}
        if len(kinds) > 1:
            raise ValueError("models: mixes classifiers (SConvNet, AllConvNet) with regressors "
                             "(GammaCNN, LinearDecoder); train them in separate configs")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: names repeat ({names}); give each model its own name")
        if self.task == "classification" and self.protocol.kind != "loto":
            raise ValueError("protocol.kind: classifiers use 'loto' (seed 004)")
        if self.task == "regression" and self.protocol.kind != "ab":
            raise ValueError("protocol.kind: regressors use 'ab' (seed 000)")
        if self.loss.kind is not None:
            want = ("cross_entropy",) if self.task == "classification" else ("sse", "mse")
            if self.loss.kind not in want:
                raise ValueError(f"loss.kind: {self.loss.kind!r} does not fit a {self.task} "
                                 f"(use {' or '.join(want)})")
        if self.protocol.stack_linear and "linear" not in self.protocol.controls:
            raise ValueError("protocol.stack_linear: needs the linear control "
                             "(protocol.controls = ['linear'])")
        if (self.protocol.ensemble or self.protocol.stack_linear) and self.protocol.kind != "ab":
            raise ValueError("protocol.ensemble / stack_linear: only for protocol.kind = 'ab'")
        exportable = names + (["control_linear"] if "linear" in self.protocol.controls else [])
        if self.protocol.ensemble:
            exportable += [f"{n}_ensemble" for n in names]
        if self.protocol.stack_linear:
            exportable.append(f"{names[0]}_ensemble_linear")
        if self.export.model is not None and self.export.model not in exportable:
            raise ValueError(f"export.model: {self.export.model!r} is not one of {exportable} "
                             "(models[].name, control_linear with protocol.controls = ['linear'], "
                             "<name>_ensemble with protocol.ensemble, <first>_ensemble_linear with "
                             "protocol.stack_linear)")
        if self.preprocessing.seed004_images and self.data.kind != "flexemg":
            raise ValueError("preprocessing.seed004_images: only for data.kind='flexemg'")
        if self.protocol.baselines and self.task != "classification":
            raise ValueError("protocol.baselines: the LDA baseline is for classifiers")
        return self


def load_train_config(path: str | Path | None = None, *, data: dict[str, Any] | None = None) -> TrainConfig:
    """Read and validate a training config.

    Parameters
    ----------
    path : path, optional
        A TOML file; ``data.path``, ``out_dir`` and ``export.path`` are resolved against
        its folder.
    data : dict, optional
        An already-parsed mapping instead (paths resolved against the current directory).

    Raises
    ------
    ConfigError
        Every invalid or unknown field, named by its dotted location, with how to fix it.
    """
    if (path is None) == (data is None):
        raise ConfigError("load_train_config needs exactly one of path or data", "pass a config file")
    raw = read_document(Path(path), "training config") if path is not None else dict(data or {})
    origin = str(path) if path is not None else "<dict>"
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = "unknown field (not allowed)" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"{loc}: {msg}")
        raise ConfigError(f"invalid training config {origin}:\n    " + "\n    ".join(lines),
                          "fix the fields named above (see configs/train/*.toml for examples)") from None
    base = Path(path).resolve().parent if path is not None else Path.cwd()

    def resolve(p: Path | None) -> Path | None:
        if p is None or p.is_absolute():
            return p
        return (base / p).resolve()

    cfg.data.path = resolve(cfg.data.path) or cfg.data.path
    cfg.out_dir = resolve(cfg.out_dir)
    cfg.export.path = resolve(cfg.export.path)
    return cfg


# ============================================================================ data and models


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Read the configured recordings and run them through the configured chain."""
    recs, trials = load_recordings(cfg.data.kind, cfg.data.path, trial_block_s=cfg.data.trial_block_s,
                                   max_trials=cfg.data.max_trials, fs=cfg.data.fs_hz)
    chain = list(cfg.preprocessing.chain)
    if cfg.preprocessing.seed004_images:
        amap = recs[0].meta.get("arraymap")
        if amap is None:
            raise ConfigError("preprocessing.seed004_images: arraymap.mat was not found next to the trials",
                              "keep arraymap.mat in the session folder or a parent")
        chain = chain + flexemg_chain(amap)
    prov = {"data": cfg.data.kind, "path": str(cfg.data.path), "files": [Path(str(r.meta.get("file", "")))
                                                                        .name for r in recs]}
    return make_training_data(recs, trials, chain, task=cfg.task, targets=cfg.data.targets, provenance=prov)


def build_model(entry: ModelEntry, data: TrainingData) -> nn.Module:
    """Build one configured network for ``data`` (fresh weights).

    Fills ``n_in`` / ``rate_hz`` (GammaCNN), ``n_in`` / ``n_out`` (LinearDecoder),
    ``grid_shape`` / ``n_classes`` (classifiers) from the data when not given.

    Raises
    ------
    ConfigError
        When the configured sizes do not fit the data; the message names the field.
    """
    c = dict(entry.config)
    k = data.n_outputs
    where = f"models[{entry.name}].config"
    if entry.kind == "GammaCNN":
        c.setdefault("n_in", data.n_inputs)
        c.setdefault("rate_hz", data.frame_rate_hz)
        c.setdefault("shared_sizes", [6, 3, k])
        if list(c["shared_sizes"])[-1:] != [k]:
            raise ConfigError(f"{where}.shared_sizes ends with {list(c['shared_sizes'])[-1:]} but the data "
                              f"has {k} targets", f"make the last shared size {k}")
    elif entry.kind == "LinearDecoder":
        c.setdefault("n_in", data.n_inputs)
        c.setdefault("n_out", k)
        if "taps" not in c:
            raise ConfigError(f"{where}.taps is required for a LinearDecoder", "give the lags in frames")
    else:
        if data.grid_shape is None:
            raise ConfigError(f"{where}: a {entry.kind} needs an electrode grid, the chain has no grid stage",
                              "add a 'grid' stage (or preprocessing.seed004_images = true)")
        c.setdefault("grid_shape", list(data.grid_shape))
        c.setdefault("n_classes", k)
    n_in = c.get("n_in")
    if n_in is not None and int(n_in) != data.n_inputs:
        raise ConfigError(f"{where}.n_in = {n_in} but the chain outputs {data.n_inputs} channels",
                          "leave n_in out (it is filled from the data)")
    try:
        return model_from_spec({"kind": entry.kind, "config": c})
    except ModelError as exc:
        raise ConfigError(f"{where}: {exc.what}", exc.fix) from None


def _last_layer(model: nn.Module) -> nn.Module:
    if isinstance(model, GammaCNN):
        return model.shared.layers[-1]
    if isinstance(model, LinearDecoder):
        return model.conv
    raise ModelError(f"cannot rescale the output of a {type(model).__name__}", "regression models only")


def fold_target_scaling(model: nn.Module, mean: np.ndarray, std: np.ndarray) -> nn.Module:
    """Make a model trained on z-scored targets output ``y = std · z + mean`` (in place).

    The last layer is linear (a Gamma or free causal conv with bias), so its weights
    (or Gamma areas α) are multiplied by ``std`` and its bias becomes ``std·b + mean``.
    """
    layer = _last_layer(model)
    s = torch.as_tensor(np.asarray(std, dtype=np.float32))
    m = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    with torch.no_grad():
        if isinstance(layer, GammaConv1d):
            layer.alpha.mul_(s[:, None])
        elif isinstance(layer, CausalConv1d):
            layer.weight.mul_(s[:, None, None])
        else:  # pragma: no cover - _last_layer returns one of the two
            raise ModelError(f"unexpected last layer {type(layer).__name__}", "report this as a bug")
        if layer.bias is None:
            raise ModelError("the last layer has no bias; cannot add the target mean", "use bias=True")
        layer.bias.mul_(s).add_(m)
    return model


def seed_all(seed: int) -> None:
    """Seed torch (weights, dropout, batch order use their own seeded generators)."""
    torch.manual_seed(int(seed))


# ============================================================================ regression


def r2_score(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """R² of each column (see :func:`rtdecode.metrics.r2_per_column`); float64 (K,)."""
    return r2_per_column(y, yhat)


def masked_r2(pred: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """R² per output over the masked frames.

    Parameters
    ----------
    pred, y : float (S, K, T)
    mask : bool (S, T)

    Returns
    -------
    float (K,)
    """
    m = mask[:, None, :].to(pred.dtype)
    n = m.sum().clamp_min(1.0)
    mean = (y * m).sum(dim=(0, 2), keepdim=True) / n
    ss_tot = (((y - mean) ** 2) * m).sum(dim=(0, 2))
    ss_res = (((y - pred) ** 2) * m).sum(dim=(0, 2))
    return 1.0 - ss_res / ss_tot.clamp_min(1e-12)


@dataclass
class Sequences:
    """Padded segments for full-batch training.

    Attributes
    ----------
    x : float32 (S, C, T)
        Frames (zero after each segment's end).
    y : float32 (S, K, T)
        Z-scored targets.
    masks : dict of str → bool (S, T)
        Frames of each set (train, a, b), excluding padding and the skipped transient.
    lengths : list of int
        Frames of each segment.
    x_eval : float32 (S, C, T) or None
        Intact frames for scoring the validation / test sets when ``x`` is time-shuffled.
    """

    x: Tensor
    y: Tensor
    masks: dict[str, Tensor]
    lengths: list[int]
    x_eval: Tensor | None = None


def make_sequences(data: TrainingData, sets: Mapping[str, Sequence[int]], *, skip_frames: int,
                   y_mean: np.ndarray, y_std: np.ndarray, shuffle_rng: np.random.Generator | None = None
                   ) -> Sequences:
    """Stack the segments into padded tensors with one frame mask per set.

    With ``shuffle_rng`` (seed 000's time-shuffled control) the network is trained on a copy
    whose frames are permuted over the whole segment — every frame a training frame's
    receptive field can reach, held-out trials included, so no intact input remains in the
    training context — and scored on the intact frames (``x_eval``).
    """
    lengths = [s.n_frames for s in data.segments]
    t_max = max(lengths)
    S, C, K = len(lengths), data.n_inputs, data.n_outputs
    x = np.zeros((S, C, t_max), dtype=np.float32)
    y = np.zeros((S, K, t_max), dtype=np.float32)
    masks = {k: np.zeros((S, t_max), dtype=bool) for k in sets}
    x_eval = np.zeros_like(x) if shuffle_rng is not None else None
    for i, seg in enumerate(data.segments):
        n = seg.n_frames
        keep = skip_mask(n, skip_frames)
        for k, trials in sets.items():
            masks[k][i, :n] = np.isin(seg.trial, np.asarray(list(trials))) & keep
        xi = seg.x
        if shuffle_rng is not None and x_eval is not None:
            x_eval[i, :, :n] = xi.T
            xi = shuffle_frames(xi, np.ones(n, dtype=bool), shuffle_rng)
        x[i, :, :n] = xi.T
        y[i, :, :n] = ((seg.y - y_mean) / y_std).T
    return Sequences(x=torch.from_numpy(x), y=torch.from_numpy(y),
                     masks={k: torch.from_numpy(v) for k, v in masks.items()}, lengths=lengths,
                     x_eval=None if x_eval is None else torch.from_numpy(x_eval))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


def fit_regression(model: nn.Module, seqs: Sequences, *, steps: int, lr: float, patience: int,
                   loss: str = "sse", weight_decay: float = 0.0, select: Sequence[str] = ("a", "b"),
                   progress: bool = False, desc: str = "train") -> dict[str, Any]:
    """Full-batch Adam on ``seqs.masks["train"]``, scoring every step on every set.

    Each step's model is scored (R² per output, averaged) from the same forward pass that
    computes its loss, so "the model at step s" is the one before update s (with
    ``seqs.x_eval``, the held-out sets are scored from a second pass on the intact frames).
    For each set in ``select`` the best-scoring step's weights are kept (early stopping).

    Parameters
    ----------
    model : nn.Module
        A regression network (no dropout / batch norm: train and eval forward are equal).
    seqs : Sequences
    steps : int
        Updates at most.
    lr : float
        Adam learning rate.
    patience : int
        Stop when no set in ``select`` improved for this many steps.
    loss : {"sse", "mse"}
        Sum (seed 000) or mean of squared errors over the training frames and outputs.
    select : sequence of str
        Sets whose best step is kept.

    Returns
    -------
    dict
        ``history`` ({"loss": [...], "r2": {set: [...]}}), ``best`` ({set: {"step",
        "r2": {set: mean R²}, "r2_outputs": {set: [per output]}, "state": state_dict}}),
        ``steps_run``, ``diverged`` (bool), ``seconds``.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    train = seqs.masks["train"]
    m_train = train[:, None, :].to(torch.float32)
    n_train = float(m_train.sum()) * seqs.y.shape[1]
    if n_train == 0:
        raise ConfigError("no training frames left after loss.skip_s", "lower loss.skip_s or add trials")
    hist: dict[str, Any] = {"loss": [], "r2": {k: [] for k in seqs.masks}}
    best: dict[str, dict[str, Any]] = {k: {"step": -1, "score": -math.inf} for k in select}
    diverged = False
    t0 = time.perf_counter()
    step = 0
    with _progress(steps, desc, progress) as bar:
        for step in range(steps + 1):
            model.train()
            pred = model(seqs.x)
            sq = ((pred - seqs.y) ** 2) * m_train
            total = sq.sum() if loss == "sse" else sq.sum() / n_train
            with torch.no_grad():
                pred_eval = pred if seqs.x_eval is None else model(seqs.x_eval)
                r2 = {k: masked_r2(pred if k == "train" else pred_eval, seqs.y, m)
                      for k, m in seqs.masks.items()}
                means = {k: float(v.mean()) for k, v in r2.items()}
            hist["loss"].append(float(total.detach()) / (1.0 if loss == "mse" else n_train))
            for k in seqs.masks:
                hist["r2"][k].append(means[k])
            if not math.isfinite(float(total.detach())):
                diverged = True
                break
            for k in select:
                if means[k] > best[k]["score"]:
                    best[k] = {"step": step, "score": means[k], "r2": dict(means),
                               "r2_outputs": {s: [float(v) for v in r2[s]] for s in r2},
                               "state": copy.deepcopy(model.state_dict())}
            if step == steps or step - max(b["step"] for b in best.values()) > patience:
                break
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return {"history": hist, "best": best, "steps_run": step, "diverged": diverged,
            "seconds": time.perf_counter() - t0}


def _lagged_rows(data: TrainingData, lags: int) -> list[np.ndarray]:
    return [lagged_design(s.x, lags) for s in data.segments]


def fit_linear(data: TrainingData, sets: Mapping[str, Sequence[int]], *, lags: int, ridges: Sequence[float],
               skip_frames: int) -> dict[str, Any]:
    """Seed 000's linear control: a ridge Wiener filter over ``lags`` frames, ridge chosen per set.

    For each validation set (``a``, ``b``) the ridge with the best R² on it is kept and
    scored on the other set, as the networks are.

    Returns
    -------
    dict
        ``amax_b``, ``bmax_a``, ``score``, ``r2_outputs`` ({"amax_b": [...], "bmax_a": [...]}),
        ``ridge`` ({"a": λ, "b": λ}), ``parameters``, ``models`` ({"a": LinearDecoder, "b": ...})
        in physical units, and ``predictions`` (per segment (T, K), of the A-chosen model).
    """
    design = _lagged_rows(data, lags)
    masks = {}
    for k, trials in sets.items():
        masks[k] = [np.isin(s.trial, np.asarray(list(trials))) & skip_mask(s.n_frames, skip_frames)
                    for s in data.segments]
    X = np.concatenate([d[m] for d, m in zip(design, masks["train"], strict=True)])
    Y = np.concatenate([s.y[m] for s, m in zip(data.segments, masks["train"], strict=True)])
    Y = Y.astype(np.float64)
    Xm, Ym = X.mean(axis=0), Y.mean(axis=0)
    Xc = X - Xm
    G = Xc.T @ Xc
    XtY = Xc.T @ (Y - Ym)
    diag = float(np.mean(np.diag(G)))
    fits = []
    for lam in ridges:
        coef = np.linalg.solve(G + lam * diag * np.eye(G.shape[0]), XtY)
        b = Ym - Xm @ coef
        preds = [d @ coef + b for d in design]
        r2 = {}
        for k in sets:
            yt = np.concatenate([s.y[m] for s, m in zip(data.segments, masks[k], strict=True)])
            yp = np.concatenate([p[m] for p, m in zip(preds, masks[k], strict=True)])
            r2[k] = r2_score(yt, yp)
        fits.append((lam, coef, b, r2, preds))

    def pick(own: str) -> tuple[Any, ...]:
        return max(fits, key=lambda f: float(np.nanmean(f[3][own])))

    fa, fb = pick("a"), pick("b")
    c, K = data.n_inputs, data.n_outputs

    def to_model(coef: np.ndarray, b: np.ndarray) -> LinearDecoder:
        m = LinearDecoder(c, K, lags)
        W = coef.T.reshape(K, lags, c).transpose(0, 2, 1)  # (K, C, L), oldest lag first
        with torch.no_grad():
            m.conv.weight.copy_(torch.from_numpy(W.astype(np.float32)))
            assert m.conv.bias is not None
            m.conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        return m.eval()

    amax_b = float(np.nanmean(fa[3]["b"]))
    bmax_a = float(np.nanmean(fb[3]["a"]))
    return {
        "amax_b": amax_b, "bmax_a": bmax_a, "score": 0.5 * (amax_b + bmax_a),
        "r2_outputs": {"amax_b": [float(v) for v in fa[3]["b"]], "bmax_a": [float(v) for v in fb[3]["a"]]},
        "r2_train": float(np.nanmean(fa[3]["train"])),
        "ridge": {"a": fa[0], "b": fb[0]}, "lags": lags, "parameters": int(c * K * lags + K),
        "models": {"a": to_model(fa[1], fa[2]), "b": to_model(fb[1], fb[2])},
        "predictions": [p.astype(np.float32) for p in fa[4]],
    }


# ============================================================================ classification


def _frames_tensor(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, :, None]


def predict_proba(model: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Class probabilities of each frame (eval mode).

    Parameters
    ----------
    model : nn.Module
        A frame classifier (SConvNet, AllConvNet).
    x : float (N, C)
        Model frames.

    Returns
    -------
    float32 (N, G)
    """
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model(_frames_tensor(x[i:i + batch]))[:, :, 0]
            out.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def fit_classifier(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, *, epochs: int, batch_size: int, lr: float, patience: int,
                   rng: np.random.Generator, weight_decay: float = 0.0, progress: bool = False,
                   desc: str = "train") -> dict[str, Any]:
    """Minibatch Adam with cross-entropy, early-stopped on the validation loss (seed 004).

    Parameters
    ----------
    model : nn.Module
        A frame classifier (batch norm and dropout active in training).
    x_train, x_val : float (N, C)
    y_train, y_val : int (N,)
    epochs, batch_size, lr, patience : training schedule (patience in epochs).
    rng : numpy Generator
        Batch order.

    Returns
    -------
    dict
        ``history`` ({"train_loss", "val_loss", "val_acc"} per epoch), ``best_epoch``,
        ``epochs_run``, ``seconds``. The model is left with the best epoch's weights, in
        eval mode.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    X = _frames_tensor(x_train)
    Y = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    yv = np.asarray(y_val, dtype=np.int64)
    hist: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_acc": []}
    best_loss, best_epoch, best_state = math.inf, -1, copy.deepcopy(model.state_dict())
    t0 = time.perf_counter()
    n = X.shape[0]
    n_batches = max(1, n // batch_size)
    ep = 0
    with _progress(epochs * n_batches, desc, progress) as bar:
        for ep in range(epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(n))
            losses = []
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                if idx.numel() < 2:  # batch norm needs two samples
                    continue
                logits = model(X[idx])[:, :, 0]
                loss = F.cross_entropy(logits, Y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                bar.update(1)
            p = predict_proba(model, x_val)
            val_loss = float(-np.mean(np.log(np.clip(p[np.arange(len(yv)), yv], 1e-12, None))))
            val_acc = float(np.mean(np.argmax(p, axis=1) == yv))
            hist["train_loss"].append(float(np.mean(losses)) if losses else math.nan)
            hist["val_loss"].append(val_loss)
            hist["val_acc"].append(val_acc)
            bar.set_postfix({"val_loss": f"{val_loss:.3f}", "val_acc": f"{val_acc:.3f}"})
            if val_loss < best_loss:
                best_loss, best_epoch, best_state = val_loss, ep, copy.deepcopy(model.state_dict())
            elif ep - best_epoch >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return {"history": hist, "best_epoch": best_epoch, "epochs_run": ep + 1,
            "seconds": time.perf_counter() - t0}


def smoothed_accuracy(proba: np.ndarray, y: np.ndarray, window: int, method: str) -> float:
    """Per-sample accuracy after the service's causal smoothing of a trial's probabilities."""
    sm = ProbabilitySmoother(proba.shape[1], window, method)  # type: ignore[arg-type]
    return float(np.mean(np.argmax(sm.step(proba), axis=1) == y))


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (true class, predicted class), int64 (G, G)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return cm


# ============================================================================ protocol runs


@dataclass
class RunResult:
    """What a protocol run produced.

    Attributes
    ----------
    metrics : dict
        JSON-serialisable results (per model, controls / baselines, settings).
    models : dict of str → nn.Module
        The selected model of each network (physical output units), ready to export.
    data : TrainingData
        The data as trained on (with any fitted standardize stage in ``preprocessing``).
    curves : dict
        Training curves of the selected attempts / folds (for plots).
    predictions : dict
        Regression: per model, per segment predictions (T, K) of the selected model and the
        set masks; classification: confusion matrices.
    """

    metrics: dict[str, Any]
    models: dict[str, nn.Module]
    data: TrainingData
    curves: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, Any] = field(default_factory=dict)


def _segment_predictions(model: nn.Module, data: TrainingData) -> list[np.ndarray]:
    model.eval()
    out = []
    with torch.no_grad():
        for s in data.segments:
            y = model(torch.from_numpy(np.ascontiguousarray(s.x.T[None])))
            out.append(y[0].numpy().T)
    return out


def _r2_on(data: TrainingData, preds: list[np.ndarray], trials: Sequence[int], skip: int) -> np.ndarray:
    yt, yp = [], []
    for s, p in zip(data.segments, preds, strict=True):
        m = np.isin(s.trial, np.asarray(list(trials))) & skip_mask(s.n_frames, skip)
        yt.append(s.y[m])
        yp.append(p[m])
    return r2_score(np.concatenate(yt), np.concatenate(yp))


def _ab_network(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, sets: dict[str, list[int]],
                skip: int, y_mean: np.ndarray, y_std: np.ndarray, *, shuffled: bool,
                log: Callable[[str], None]) -> dict[str, Any]:
    """Restarts of one network under the A/B protocol; returns metrics, models and curves."""
    rng = np.random.default_rng(cfg.seed + (10_000 if shuffled else 0))
    seqs = make_sequences(data, sets, skip_frames=skip, y_mean=y_mean, y_std=y_std,
                          shuffle_rng=rng if shuffled else None)
    attempts, fits = [], []
    label = entry.name + (" (shuffled)" if shuffled else "")
    for r in range(cfg.protocol.restarts):
        seed_all(cfg.seed + r)
        model = build_model(entry, data)
        fit = fit_regression(model, seqs, steps=cfg.optim.steps, lr=cfg.optim.lr,
                             patience=cfg.optim.patience_steps, loss=cfg.loss.kind or "sse",
                             weight_decay=cfg.optim.weight_decay, progress=cfg.progress,
                             desc=f"{label} {r + 1}/{cfg.protocol.restarts}")
        a, b = fit["best"]["a"], fit["best"]["b"]
        if a["step"] < 0 or b["step"] < 0:
            attempts.append({"amax": {"train": -math.inf, "a": -math.inf, "b": -math.inf},
                             "bmax": {"train": -math.inf, "a": -math.inf, "b": -math.inf}})
        else:
            attempts.append({"amax": a["r2"], "bmax": b["r2"]})
        fits.append(fit)
        nan = float("nan")
        log(f"{label} attempt {r + 1}: {fit['steps_run']} steps in {fit['seconds']:.1f} s; "
            f"Amax step {a['step']} R² A {a.get('score', nan):.3f} (B {a.get('r2', {}).get('b', nan):.3f}); "
            f"Bmax step {b['step']} R² B {b.get('score', nan):.3f}")
    sel = select_ab(attempts)
    chosen = {}
    for key, idx in (("a", sel["amax_attempt"]), ("b", sel["bmax_attempt"])):
        m = build_model(entry, data)
        state = fits[idx]["best"][key].get("state")
        if state is not None:
            m.load_state_dict(state)
        chosen[key] = fold_target_scaling(m, y_mean, y_std).eval()
    scored = _ab_scores(data, sets, skip, chosen)
    fa, fb = fits[sel["amax_attempt"]], fits[sel["bmax_attempt"]]
    metrics = {
        "kind": entry.kind, "config": chosen["a"].config, "parameters": count_parameters(chosen["a"]),
        "receptive_field_frames": int(getattr(chosen["a"], "receptive_field", 1)),
        "score": sel["score"], "amax_b": sel["amax_b"], "bmax_a": sel["bmax_a"],
        "r2_outputs": scored["metrics"]["r2_outputs"],
        "amax": {"attempt": sel["amax_attempt"], "step": fa["best"]["a"]["step"],
                 "r2": fa["best"]["a"].get("r2")},
        "bmax": {"attempt": sel["bmax_attempt"], "step": fb["best"]["b"]["step"],
                 "r2": fb["best"]["b"].get("r2")},
        "attempts": [{"steps_run": f["steps_run"], "seconds": round(f["seconds"], 2),
                      "diverged": f["diverged"], "amax": at["amax"], "bmax": at["bmax"],
                      "train_r2_max": float(np.nanmax(f["history"]["r2"]["train"])),
                      "train_r2_last": float(f["history"]["r2"]["train"][-1])}
                     for f, at in zip(fits, attempts, strict=True)],
        "mean_attempt_amax_b": float(np.mean([a["amax"]["b"] for a in attempts])),
    }
    out: dict[str, Any] = {"metrics": metrics, "models": chosen, "predictions": scored["predictions"]["a"],
                           "curves": {"amax": fa["history"], "bmax": fb["history"]}}
    if (cfg.protocol.ensemble or cfg.protocol.stack_linear) and not shuffled:
        members = {key: _restart_members(entry, data, fits, key, y_mean, y_std) for key in ("a", "b")}
        ens = {key: _mean_stack(m, data.n_outputs) for key, m in members.items()}
        sizes = {k: len(v) for k, v in members.items()}
        out["ensemble"] = {**_ab_scores(data, sets, skip, ens), "members": members,
                           "metrics_extra": {"of": entry.name, "members": sizes}}
    return out


def _restart_members(entry: ModelEntry, data: TrainingData, fits: Sequence[dict[str, Any]], key: str,
                     y_mean: np.ndarray, y_std: np.ndarray) -> list[nn.Module]:
    """Every restart's model at its best step on set ``key`` (physical units); diverged ones left out."""
    out = []
    for f in fits:
        state = f["best"][key].get("state")
        if state is None or f["best"][key]["step"] < 0:
            continue
        m = build_model(entry, data)
        m.load_state_dict(state)
        out.append(fold_target_scaling(m, y_mean, y_std).eval())
    if not out:
        raise ModelError(f"{entry.name}: no restart reached a best step on set {key.upper()}",
                         "lower optim.lr or raise optim.steps")
    return out


def _mean_stack(members: Sequence[nn.Module], k: int) -> StackedDecoder:
    """The ensemble of ``members`` (``k`` outputs each): a :class:`StackedDecoder` averaging them."""
    w = torch.cat([torch.eye(k)] * len(members), dim=1) / len(members)
    return StackedDecoder.from_members(members, w, torch.zeros(k))


def _ab_scores(data: TrainingData, sets: Mapping[str, Sequence[int]], skip: int,
               models: Mapping[str, nn.Module]) -> dict[str, Any]:
    """Score a model pair the seed-000 way: ``models["a"]`` (chosen on A) on B, ``models["b"]`` on A."""
    preds = {key: _segment_predictions(m, data) for key, m in models.items()}
    r2_ab = _r2_on(data, preds["a"], sets["b"], skip)
    r2_ba = _r2_on(data, preds["b"], sets["a"], skip)
    amax_b, bmax_a = float(np.nanmean(r2_ab)), float(np.nanmean(r2_ba))
    return {
        "metrics": {"kind": type(models["a"]).__name__, "parameters": count_parameters(models["a"]),
                    "receptive_field_frames": int(getattr(models["a"], "receptive_field", 1)),
                    "score": 0.5 * (amax_b + bmax_a), "amax_b": amax_b, "bmax_a": bmax_a,
                    "r2_outputs": {"amax_b": [float(v) for v in r2_ab], "bmax_a": [float(v) for v in r2_ba]}},
        "models": dict(models), "predictions": preds,
    }


def _stack_with_linear(data: TrainingData, sets: Mapping[str, Sequence[int]], skip: int,
                       ensemble: dict[str, Any], linear: Mapping[str, nn.Module]) -> dict[str, Any]:
    """The ensemble stacked with the linear control: ``y = W_e · ensemble + W_l · linear + b``.

    For each validation set (A, B) the head is fitted by least squares on that set's frames
    (the members and the linear control chosen on it are fixed), then the pair is scored the
    seed-000 way on the other set.
    """
    stacked = {}
    k = data.n_outputs
    for key in ("a", "b"):
        lin_pred = _segment_predictions(linear[key], data)
        feats, ys = [], []
        for s, pe, pl in zip(data.segments, ensemble["predictions"][key], lin_pred, strict=True):
            m = np.isin(s.trial, np.asarray(list(sets[key]))) & skip_mask(s.n_frames, skip)
            feats.append(np.column_stack([pe[m], pl[m], np.ones(int(m.sum()))]))
            ys.append(s.y[m])
        coef = np.linalg.lstsq(np.concatenate(feats).astype(np.float64),
                               np.concatenate(ys).astype(np.float64), rcond=None)[0]  # (2K + 1, K)
        members = ensemble["members"][key]
        n = len(members)
        w_e, w_l, b = coef[:k].T, coef[k:2 * k].T, coef[2 * k]
        w = np.concatenate([w_e / n] * n + [w_l], axis=1)
        stacked[key] = StackedDecoder.from_members([*members, linear[key]], torch.from_numpy(w).float(),
                                                   torch.from_numpy(b).float())
    return _ab_scores(data, sets, skip, stacked)


def run_ab(cfg: TrainConfig, data: TrainingData, log: Callable[[str], None] = logger.info) -> RunResult:
    """Seed 000's protocol (see the module notes) for every configured network and control."""
    sets = groups_of_five(data.trials)
    if cfg.preprocessing.standardize:
        data = data.with_stage(standardize_spec(data, sets["train"]))
    skip = int(round(cfg.loss.skip_s * data.frame_rate_hz))
    _, ytr = data.frames(sets["train"])
    y_mean = ytr.mean(axis=0).astype(np.float64)
    y_std = np.where(ytr.std(axis=0) > 0, ytr.std(axis=0), 1.0).astype(np.float64)
    metrics: dict[str, Any] = {"protocol": "ab", "sets": sets, "skip_frames": skip,
                               "restarts": cfg.protocol.restarts, "models": {}, "controls": {}}
    models: dict[str, nn.Module] = {}
    curves: dict[str, Any] = {}
    preds: dict[str, Any] = {}
    ensembles: dict[str, Any] = {}
    for entry in cfg.models:
        res = _ab_network(cfg, entry, data, sets, skip, y_mean, y_std, shuffled=False, log=log)
        metrics["models"][entry.name] = res["metrics"]
        models[entry.name] = res["models"]["a"]
        curves[entry.name] = res["curves"]
        preds[entry.name] = res["predictions"]
        log(f"{entry.name}: session score {res['metrics']['score']:.3f} (Amax(B) "
            f"{res['metrics']['amax_b']:.3f}, Bmax(A) {res['metrics']['bmax_a']:.3f})")
        if "ensemble" in res:
            ens = res["ensemble"]
            ensembles[entry.name] = ens
            if cfg.protocol.ensemble:
                name = f"{entry.name}_ensemble"
                metrics["models"][name] = {**ens["metrics"], **ens["metrics_extra"]}
                models[name] = ens["models"]["a"]
                log(f"{name}: session score {ens['metrics']['score']:.3f} "
                    f"({ens['metrics_extra']['members']['a']} members)")
    if "linear" in cfg.protocol.controls:
        lags = max(1, int(round(cfg.protocol.linear_history_s * data.frame_rate_hz)))
        lin = fit_linear(data, sets, lags=lags, ridges=cfg.protocol.linear_ridge, skip_frames=skip)
        lin_models = lin.pop("models")
        models["control_linear"] = lin_models["a"]
        preds["control_linear"] = lin.pop("predictions")
        metrics["controls"]["linear"] = lin
        log(f"linear control ({lags} lags): score {lin['score']:.3f}")
        if cfg.protocol.stack_linear:
            first = cfg.models[0].name
            st = _stack_with_linear(data, sets, skip, ensembles[first], lin_models)
            name = f"{first}_ensemble_linear"
            sizes = {k: len(ensembles[first]["members"][k]) for k in ("a", "b")}
            metrics["models"][name] = {**st["metrics"], "of": [f"{first}_ensemble", "control_linear"],
                                       "members": sizes}
            models[name] = st["models"]["a"]
            preds[name] = st["predictions"]["a"]
            log(f"{name}: session score {st['metrics']['score']:.3f}")
    if "shuffled" in cfg.protocol.controls:
        res = _ab_network(cfg, cfg.models[0], data, sets, skip, y_mean, y_std, shuffled=True, log=log)
        metrics["controls"]["shuffled"] = res["metrics"]
        log(f"shuffled control: score {res['metrics']['score']:.3f}")
    masks = {k: [np.isin(s.trial, np.asarray(v)) & skip_mask(s.n_frames, skip) for s in data.segments]
             for k, v in sets.items()}
    return RunResult(metrics=metrics, models=models, data=data, curves=curves,
                     predictions={"segments": preds, "masks": masks})


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    if n is None or x.shape[0] <= n:
        return x, y
    idx = np.sort(rng.choice(x.shape[0], size=n, replace=False))
    return x[idx], y[idx]


def _lda_features(cfg: TrainConfig, data: TrainingData) -> list[np.ndarray]:
    """TD features of every sample of every recording, through the data chain's filter stages."""
    if not math.isclose(data.frame_rate_hz, data.rate_hz):
        raise ConfigError("protocol.baselines = ['lda'] needs model frames at the input rate",
                          "drop the LDA baseline or the resampling stage")
    specs = [s for s in data.preprocessing if s["kind"] == "butter"]
    window = max(2, int(round(cfg.protocol.lda_window_s * data.rate_hz)))
    out = []
    for rec, seg in zip(data.recordings, data.segments, strict=True):
        xf, _ = build_chain(specs, rec.fs, rec.n_channels).process(rec.x, np.asarray(rec.t))
        if xf.shape[0] != seg.n_frames:
            raise ConfigError("the LDA chain and the data chain give different frame counts",
                              "use a chain without resampling for the LDA baseline")
        out.append(td_features(xf, window, cfg.protocol.lda_threshold).astype(np.float32))
    return out


def _smoothed_of(fold: dict[str, Any], key: str) -> float:
    return float(fold["smoothed"][key])


def run_loto(cfg: TrainConfig, data: TrainingData, log: Callable[[str], None] = logger.info) -> RunResult:
    """Seed 004's leave-one-trial-out protocol for every configured network (and the LDA)."""
    folds = leave_one_trial_out(data.trials, val_trials=cfg.protocol.val_trials, folds=cfg.protocol.folds)
    G = data.n_outputs
    export_fold = cfg.export.fold if cfg.export.fold is not None else folds[0].test
    if export_fold not in [f.test for f in folds]:
        raise ConfigError(f"export.fold {export_fold} is not one of the folds run "
                          f"({[f.test for f in folds]})", "pick a test trial of protocol.folds")
    windows = {f"{s * 1e3:g}ms_{m}": (window_frames(s, data.frame_rate_hz), m)
               for s in cfg.protocol.smoothing_s for m in cfg.protocol.smoothing_methods}
    per_model: dict[str, dict[str, Any]] = {
        e.name: {"kind": e.kind, "folds": [], "confusion": np.zeros((G, G), dtype=np.int64)}
        for e in cfg.models}
    lda_res: dict[str, Any] | None = None
    feats = None
    if "lda" in cfg.protocol.baselines:
        feats = _lda_features(cfg, data)
        lda_res = {"folds": [], "confusion": np.zeros((G, G), dtype=np.int64),
                   "window_s": cfg.protocol.lda_window_s, "threshold": cfg.protocol.lda_threshold,
                   "stride": cfg.protocol.lda_stride, "features": "MAV, WL, ZC, SSC per channel"}
    models: dict[str, nn.Module] = {}
    curves: dict[str, Any] = {}
    rng = np.random.default_rng(cfg.seed)
    for fi, fold in enumerate(folds):
        xtr, ytr = _subsample(*data.frames(fold.train), cfg.optim.max_train_frames, rng)
        xva, yva = _subsample(*data.frames(fold.val), cfg.optim.max_val_frames, rng)
        xte, yte = data.frames([fold.test])
        for entry in cfg.models:
            seed_all(cfg.seed + fi)
            model = build_model(entry, data)
            fit = fit_classifier(model, xtr, ytr, xva, yva, epochs=cfg.optim.epochs,
                                 batch_size=cfg.optim.batch_size, lr=cfg.optim.lr,
                                 patience=cfg.optim.patience_epochs, weight_decay=cfg.optim.weight_decay,
                                 rng=np.random.default_rng(cfg.seed + fi), progress=cfg.progress,
                                 desc=f"{entry.name} fold {fold.test}")
            t0 = time.perf_counter()
            proba = predict_proba(model, xte)
            pred = np.argmax(proba, axis=1)
            rec = {"test": fold.test, "val": list(fold.val), "train_frames": int(xtr.shape[0]),
                   "accuracy": float(np.mean(pred == yte)), "best_epoch": fit["best_epoch"],
                   "epochs_run": fit["epochs_run"], "fit_seconds": round(fit["seconds"], 1),
                   "smoothed": {k: smoothed_accuracy(proba, yte, w, m) for k, (w, m) in windows.items()}}
            rec["predict_seconds"] = round(time.perf_counter() - t0, 2)
            pm = per_model[entry.name]
            pm["folds"].append(rec)
            pm["confusion"] += confusion(yte, pred, G)
            pm.setdefault("parameters", count_parameters(model))
            curves.setdefault(entry.name, {})[str(fold.test)] = fit["history"]
            if fold.test == export_fold:
                models[entry.name] = model
            log(f"fold {fold.test} {entry.name}: accuracy {rec['accuracy']:.3f} "
                + " ".join(f"{k} {v:.3f}" for k, v in rec["smoothed"].items())
                + f" ({fit['epochs_run']} epochs, {fit['seconds']:.0f} s)")
        if lda_res is not None and feats is not None:
            trials_fit = list(fold.train) + list(fold.val)
            Xf, yf = [], []
            for f, s in zip(feats, data.segments, strict=True):
                m = np.isin(s.trial, trials_fit)
                idx = np.flatnonzero(m)[::cfg.protocol.lda_stride]
                Xf.append(f[idx])
                yf.append(s.y[idx])
            lda = LDA().fit(np.concatenate(Xf), np.concatenate(yf))
            Xt = np.concatenate([f[s.trial == fold.test] for f, s in zip(feats, data.segments, strict=True)])
            pred = lda.predict(Xt)
            acc = float(np.mean(pred == yte))
            lda_res["folds"].append({"test": fold.test, "accuracy": acc,
                                     "train_windows": int(sum(len(v) for v in yf))})
            lda_res["confusion"] += confusion(yte, pred, G)
            log(f"fold {fold.test} LDA: accuracy {acc:.3f}")

    def summary(folds_: list[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> dict[str, float]:
        v = np.array([key(f) for f in folds_], dtype=np.float64)
        return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}

    out_models: dict[str, Any] = {}
    for name, pm in per_model.items():
        out_models[name] = {
            "kind": pm["kind"], "parameters": pm.get("parameters"),
            "accuracy": summary(pm["folds"], lambda f: f["accuracy"]),
            "smoothed": {k: summary(pm["folds"], partial(_smoothed_of, key=k)) for k in windows},
            "folds": pm["folds"], "confusion": pm["confusion"].tolist(),
        }
    metrics: dict[str, Any] = {
        "protocol": "loto",
        "folds": [{"test": f.test, "val": list(f.val), "train": list(f.train)} for f in folds],
        "classes": data.class_names, "frame_rate_hz": data.frame_rate_hz,
        "smoothing_windows": {k: {"frames": w, "method": m, "delay_frames": (w - 1) / 2}
                              for k, (w, m) in windows.items()},
        "max_train_frames": cfg.optim.max_train_frames, "max_val_frames": cfg.optim.max_val_frames,
        "models": out_models, "baselines": {}, "export_fold": export_fold,
    }
    if lda_res is not None:
        lda_res["accuracy"] = summary(lda_res["folds"], lambda f: f["accuracy"])
        lda_res["confusion"] = lda_res["confusion"].tolist()
        metrics["baselines"]["lda"] = lda_res
    cms = {n: np.asarray(m["confusion"]) for n, m in out_models.items()}
    return RunResult(metrics=metrics, models=models, data=data, curves=curves, predictions={"confusion": cms})


def run_protocol(cfg: TrainConfig, data: TrainingData, log: Callable[[str], None] = logger.info) -> RunResult:
    """Run the configured protocol (``ab`` or ``loto``)."""
    return run_ab(cfg, data, log) if cfg.protocol.kind == "ab" else run_loto(cfg, data, log)
