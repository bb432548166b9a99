"""``rtdecode train`` configuration: the validated TOML schema and its loader.

:class:`TrainConfig` is the whole file; every sub-table is a strict pydantic model (unknown
keys are errors that name their dotted location). ``models[].kind`` is any family registered
in :mod:`rtdecode.nn.train.families`; its task (classification or regression) decides the
protocol (``loto`` or ``ab``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rtdecode.errors import ConfigError
from rtdecode.io.labelled import DataSpec
from rtdecode.nn.train.families import FAMILIES, Task, family, kinds_of
from rtdecode.settings import SettingsModel, load_settings, read_document

logger = logging.getLogger(__name__)

#: Environment variables with this prefix override training config fields.
ENV_PREFIX = "RTDECODE_TRAIN_"

__all__ = [
    "DataConfig",
    "ExportConfig",
    "LossConfig",
    "ModelEntry",
    "OptimConfig",
    "PreprocessingTrainConfig",
    "ProtocolConfig",
    "TrainConfig",
    "load_train_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: ``[data]``: which recordings, targets and trials (shared with ``rtdecode evaluate``).
DataConfig = DataSpec


class PreprocessingTrainConfig(_Strict):
    """The causal chain (the service's stages) and what is fitted on the training trials."""

    chain: list[dict[str, Any]] = Field(default_factory=list, description="stage specs (rtdecode.dsp)")
    seed004_images: bool = Field(False, description="flexemg: append seed 004's chain (band-stop 45-55 Hz, "
                                 "[-2.5, 2.5] mV → [0, 1], electrode grid from arraymap.mat) after "
                                 "`chain` (which may add e.g. a high-pass in front)")
    standardize: bool = Field(False, description="append a standardize stage with the training trials' "
                              "mean and std (ab protocol)")
    electrode_grid: bool = Field(False, description="append a grid stage laying the channels out on the "
                                 "recordings' electrode grid (arraymap.mat), so the model file records it")


class ModelEntry(_Strict):
    """One network to train (rtdecode.nn.models)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = Field(description="a registered model family (rtdecode.nn.train.families.FAMILIES)")
    config: dict[str, Any] = Field(default_factory=dict, description="constructor arguments; n_in, "
                                   "rate_hz, grid_shape, n_classes / n_out are filled from the data")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in FAMILIES:
            raise ValueError(f"unknown model kind {v!r}; use one of {', '.join(FAMILIES)}")
        return v


class OptimConfig(_Strict):
    """Adam and the stopping rules."""

    lr: float = Field(1e-3, gt=0, description="Adam learning rate (seed 000: 0.1, seed 004: 1e-3)")
    weight_decay: float = Field(0.0, ge=0)
    steps: int = Field(1000, ge=1, description="ab: full-batch steps per restart")
    patience_steps: int = Field(200, ge=1, description="ab: stop a restart when neither A nor B improved "
                                "for this many steps")
    epochs: int = Field(100, ge=1, description="loto and recurrent networks: epochs at most")
    patience_epochs: int = Field(5, ge=1, description="loto: stop after this many epochs without a "
                                 "lower validation loss; recurrent networks: without a better R² on "
                                 "A or B")
    bptt_frames: int = Field(50, ge=2, description="recurrent networks: truncated-BPTT window, frames")
    streams: int = Field(16, ge=1, description="recurrent networks: pieces of each segment run side "
                         "by side (the batch)")
    clip_norm: float = Field(1.0, gt=0, description="recurrent networks: gradient-norm clipping")
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
    baselines: list[Literal["lda"]] = Field(default_factory=list, description="loto: the classic decoder, "
                                            "time-domain features (lda_features) → LDA; exportable as 'lda'")
    lda_features: list[Literal["mav", "wl", "zc", "ssc", "rms"]] = Field(
        default_factory=lambda: ["mav", "wl", "zc", "ssc"],  # type: ignore[arg-type]
        description="LDA features (Hudgins set)")
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
    all_data: bool = Field(False, description="fit the exported model again on every trial, with the "
                           "settings the protocol chose (loto networks: the folds' median best epoch count; "
                           "ab networks: the selected pair's mean best step, `<name>_ensemble` refitted "
                           "`restarts` times and averaged, control_linear with the chosen ridge); "
                           "its metadata keeps the protocol's held-out numbers")
    verify: bool = Field(True, description="run rtdecode verify on the exported file")


class TrainConfig(SettingsModel):
    """``rtdecode train`` configuration (TOML; ``RTDECODE_TRAIN_*`` environment overrides)."""

    model_config = SettingsConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    threads: int = Field(1, ge=1, le=64, description="torch CPU threads (per worker process)")
    workers: int = Field(0, ge=0, le=64, description="worker processes that fit networks side by side "
                         "(the folds of leave-one-trial-out, the restarts of the A/B protocol; 0: one per "
                         "`threads` CPU cores, at most one per fit; 1: every fit in this process)")
    out_dir: Path | None = Field(None, description="output folder (default out/train/<name>)")
    plots: bool = True
    progress: bool = True
    description: str = ""
    data: DataConfig
    preprocessing: PreprocessingTrainConfig = Field(default_factory=PreprocessingTrainConfig)
    models: list[ModelEntry] = Field(default_factory=list, description="networks to train (none: only "
                                     "the protocol's baselines)")
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    protocol: ProtocolConfig
    export: ExportConfig = Field(default_factory=ExportConfig)

    @property
    def task(self) -> Task:
        """The task of the networks' family (all networks of a config share it), else the protocol's."""
        if self.models:
            return family(self.models[0].kind).task
        return "classification" if self.protocol.kind == "loto" else "regression"

    @property
    def export_model(self) -> str:
        """The exported model's name (``export.model``, default the first network, else the LDA)."""
        return self.export.model or (self.models[0].name if self.models else "lda")

    @property
    def exportable(self) -> list[str]:
        """Every model name a run of this config produces."""
        names = [m.name for m in self.models]
        out = names + (["control_linear"] if "linear" in self.protocol.controls else [])
        if self.protocol.ensemble:
            out += [f"{n}_ensemble" for n in names]
        if self.protocol.stack_linear and names:
            out.append(f"{names[0]}_ensemble_linear")
        return out + (["lda"] if "lda" in self.protocol.baselines else [])

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainConfig:
        if len({family(m.kind).task for m in self.models}) > 1:
            raise ValueError(f"models: mixes classifiers ({', '.join(kinds_of('classification'))}) with "
                             f"regressors ({', '.join(kinds_of('regression'))}); train them in separate "
                             "configs")
        names = [m.name for m in self.models]
        if not names and not self.protocol.baselines:
            raise ValueError("models: give at least one network (or, for a classifier, only the classic "
                             "decoder: protocol.kind = 'loto' with protocol.baselines = ['lda'])")
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
        if self.export.model is not None and self.export.model not in self.exportable:
            raise ValueError(f"export.model: {self.export.model!r} is not one of {self.exportable} "
                             "(models[].name, control_linear with protocol.controls = ['linear'], "
                             "<name>_ensemble with protocol.ensemble, <first>_ensemble_linear with "
                             "protocol.stack_linear, lda with protocol.baselines = ['lda'])")
        if self.export.all_data and (self.export.model or "").endswith("_ensemble_linear"):
            raise ValueError("export.all_data: a stack's head is fitted on held-out frames; export "
                             "'<name>_ensemble' or a network instead")
        if self.protocol.baselines and self.task != "classification":
            raise ValueError("protocol.baselines: the LDA baseline is for classifiers")
        return self


def _read_toml(path: Path) -> dict[str, Any]:
    if path.exists() and path.suffix.lower() != ".toml":
        raise ConfigError(f"training config {path} is not a .toml file", "write the config in TOML")
    return read_document(path, "training config")


def load_train_config(path: str | Path | None = None, *, data: dict[str, Any] | None = None,
                      environ: Mapping[str, str] | None = None) -> TrainConfig:
    """Read and validate a training config (the service's loader: :func:`rtdecode.settings.load_settings`).

    Parameters
    ----------
    path : path, optional
        A TOML file; ``data.path``, ``out_dir`` and ``export.path`` are resolved against
        its folder.
    data : dict, optional
        An already-parsed mapping instead (paths resolved against the current directory).
    environ : mapping, optional
        Environment whose ``RTDECODE_TRAIN_<SECTION>__<FIELD>`` variables override fields
        (default ``os.environ``), e.g. ``RTDECODE_TRAIN_OPTIM__EPOCHS=5``.

    Raises
    ------
    ConfigError
        Every invalid or unknown field (or the variable that set it), named by its dotted
        location, with how to fix it.
    """
    if (path is None) == (data is None):
        raise ConfigError("load_train_config needs exactly one of path or data", "pass a config file")
    raw = _read_toml(Path(path)) if path is not None else dict(data or {})
    origin = f"training config {path if path is not None else '<dict>'}"
    try:
        env = os.environ if environ is None else environ
        cfg = load_settings(TrainConfig, raw, origin=origin, environ=env, prefix=ENV_PREFIX,
                            reference="docs/models.md (Training)")
    except ConfigError as exc:  # training's wording for unknown keys
        raise ConfigError(exc.what.replace("Extra inputs are not permitted", "unknown field (not allowed)"),
                          exc.fix) from None
    base = Path(path).resolve().parent if path is not None else Path.cwd()

    def resolve(p: Path | None) -> Path | None:
        if p is None or p.is_absolute():
            return p
        return (base / p).resolve()

    cfg.data.path = resolve(cfg.data.path) or cfg.data.path
    cfg.out_dir = resolve(cfg.out_dir)
    cfg.export.path = resolve(cfg.export.path)
    return cfg
