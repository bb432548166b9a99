"""The M2M-Net training config (TOML): data, volume, autoencoder, mapper, protocol and export.

Example (``configs/train/m2m_sim.toml`` is the full one)::

    name = "m2m_sim"
    [data.simulate]            # or: [data] train = ["session.csv"], test = ["other.csv"]
    subject = 0
    train_seeds = [1]
    test_seeds = [2, 3]
    [volume]                   # rtdecode.tms.volume.VolumeConfig
    shape = [64, 64, 64]
    [autoencoder]
    channels = [8, 16]
    [protocol]
    inputs = ["efield", "firing"]
    depths = [3, 6]
    [export]
    input = "firing"
    depth = 3

No torch here: the serving side reads the same schema.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from rtdecode.settings import SettingsModel, load_settings, read_document
from rtdecode.tms.volume import VolumeConfig

logger = logging.getLogger(__name__)

#: Environment variables with this prefix override M2M training config fields.
ENV_PREFIX = "RTDECODE_M2M_"

__all__ = ["AutoencoderConfig", "M2mDataConfig", "M2mExportConfig", "M2mTrainConfig", "MapperConfig",
           "OptimizerConfig", "ProtocolConfig", "SimulateConfig", "load_m2m_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimulateConfig(_Strict):
    """Mapping sessions of the virtual subject (``rtdecode simulate tms --offline --table``)."""

    subject: int = Field(0, description="seed of the virtual subject")
    train_seeds: list[int] = Field(default_factory=lambda: [1], min_length=1,
                                   description="session seeds of the training sessions")
    test_seeds: list[int] = Field(default_factory=lambda: [2, 3],
                                  description="session seeds of the held-out sessions")
    adaptive: int = Field(135, ge=0, description="adaptive pulses per intensity after the 49 grid "
                          "pulses (135: 736 pulses, ~699 without pre-activation → 629 + 70 at 9:1)")
    preactivation_prob: float = Field(0.05, ge=0, le=1)


class M2mDataConfig(_Strict):
    """Which mapping sessions train and which are held out."""

    train: list[Path] = Field(default_factory=list, description="session tables (CSV) to train on")
    test: list[Path] = Field(default_factory=list, description="held-out session tables (CSV)")
    simulate: SimulateConfig | None = Field(None, description="simulate the sessions instead")
    rmt_mso: float | None = Field(None, gt=0, le=100, description="resting motor threshold, %MSO, "
                                  "for tables with intensity_rmt only")
    cache_dir: Path | None = Field(None, description="where lattice fields are cached (default "
                                   "<out_dir>/cache)")
    max_train_pulses: int | None = Field(None, ge=10, description="use only the first n pulses of the "
                                         "training sessions (CI)")

    @model_validator(mode="after")
    def _one_source(self) -> M2mDataConfig:
        if (self.simulate is None) == (not self.train):
            raise ValueError("set exactly one of data.train (session tables) or [data.simulate]")
        return self


class OptimizerConfig(_Strict):
    """Optimiser, time-based learning-rate decay ``lr / (1 + decay · epoch)`` and stopping."""

    kind: Literal["sgd", "adam", "adadelta"] = "adadelta"
    lr: float = Field(1.0, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    lr_decay: float = Field(0.01, ge=0, description="per epoch")
    epochs: int = Field(150, ge=1)
    patience: int = Field(20, ge=1, description="stop after this many epochs without a lower "
                          "validation loss (the best epoch's weights are kept)")
    batch_size: int = Field(32, ge=1)
    l1: float = Field(1e-4, ge=0, description="ℓ1 weight on the sum of |conv kernel weights|")


class AutoencoderConfig(_Strict):
    """The autoencoder (seed 001: 32 → 64 filters, SGD with momentum)."""

    channels: tuple[int, int] = (32, 64)
    optim: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(
        kind="sgd", lr=0.01, epochs=20, patience=5, batch_size=8))


class MapperConfig(_Strict):
    """The mapper (seed 001: 16 → 64 filters, dense layers with dropout 0.15, Adadelta)."""

    channels: tuple[int, int, int] = (16, 32, 64)
    dense: int = Field(128, ge=1)
    dropout: float = Field(0.15, ge=0, lt=1)
    hidden: Literal["relu", "linear"] = Field(
        "relu", description="activations after the conv blocks and the dense layer of the Direct and "
        "Synergy mappers (the paper: ReLU; linear makes each a single-index model, a sigmoid of "
        "learnt linear features of the code)")
    synergy_loss: Literal["activations", "muscles"] = Field(
        "activations", description="the Synergy mapper's loss: on the NMF activations A (the paper), "
        "or on the muscles through the fixed basis, ||a·B − m||² (least squares under eq. 4)")
    residual_hidden: Literal["linear", "relu"] = Field(
        "linear", description="hidden activations of Both's residual net (the paper: linear)")
    optim: OptimizerConfig = Field(default_factory=OptimizerConfig)  # type: ignore[arg-type]


class ProtocolConfig(_Strict):
    """Seed 001's protocol: 9:1 calibration/test splits, repeats, models per setting."""

    inputs: list[Literal["efield", "firing"]] = Field(
        default_factory=lambda: ["efield", "firing"])  # type: ignore[arg-type]
    depths: list[Literal[3, 6]] = Field(default_factory=lambda: [3, 6])  # type: ignore[arg-type]
    synergies: int = Field(9, ge=1, description="NMF rank r")
    repeats: int = Field(3, ge=1, description="random calibration/test splits (paper: 3)")
    models: int = Field(1, ge=1, description="models trained per setting and split (paper: 12)")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="of the training sessions' pulses")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="of the calibration pulses, for early "
                                "stopping")
    exclude_preactivated: bool = Field(True, description="leave pre-activated pulses out")


class M2mExportConfig(_Strict):
    """The shipped model: one setting, all three heads in one ONNX graph."""

    enabled: bool = True
    input: Literal["efield", "firing"] = "firing"
    depth: Literal[3, 6] = 3
    primary: Literal["direct", "synergy", "both"] = Field("both", description="head the service "
                                                          "publishes")
    members: int = Field(1, ge=1, description="sets of mappers averaged in the shipped model")
    split: Literal["same", "folds"] = Field(
        "same", description="how the members are early-stopped: 'same' — all on the first split's "
        "validation pulses (the study's first model of the setting, then members − 1 more seeds); "
        "'folds' — a cross-validation committee: the calibration pulses in `members` folds, member i "
        "early-stopped on fold i and fitted on the others (needs members ≥ 2)")
    path: Path | None = Field(None, description="output .onnx (default <out_dir>/<name>.onnx)")


class M2mTrainConfig(SettingsModel):
    """The whole ``rtdecode m2m train`` config (``RTDECODE_M2M_*`` environment overrides)."""

    model_config = SettingsConfigDict(extra="forbid")

    task: Literal["m2m"] = Field("m2m", description="marks an M2M-Net config for `rtdecode train`")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    out_dir: Path | None = None
    seed: int = 0
    threads: int = Field(1, ge=1, description="torch CPU threads")
    data: M2mDataConfig
    volume: VolumeConfig = Field(default_factory=VolumeConfig)  # type: ignore[arg-type]
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)  # type: ignore[arg-type]
    mapper: MapperConfig = Field(default_factory=MapperConfig)  # type: ignore[arg-type]
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)  # type: ignore[arg-type]
    export: M2mExportConfig = Field(default_factory=M2mExportConfig)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _consistent(self) -> M2mTrainConfig:
        code = [s // 4 for s in self.volume.shape]
        if any(s % 32 for s in self.volume.shape):
            raise ValueError(f"volume.shape {list(self.volume.shape)}: each axis must be a multiple "
                             f"of 32 (two 2x poolings to the code, three more in the mapper)")
        if self.export.split == "folds" and self.export.members < 2:
            raise ValueError("export.split = 'folds' needs export.members >= 2 (one fold per member)")
        if self.export.enabled and (self.export.input not in self.protocol.inputs
                                    or self.export.depth not in self.protocol.depths):
            raise ValueError(f"export.input {self.export.input!r} / depth {self.export.depth} must be "
                             "among protocol.inputs / protocol.depths")
        logger.debug("code shape %s", code)
        return self


def _resolve(cfg: M2mTrainConfig, base: Path) -> M2mTrainConfig:
    """Relative paths in the config are relative to its folder."""
    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else (base / p).resolve()

    d = cfg.data
    d.train = [fix(p) or p for p in d.train]
    d.test = [fix(p) or p for p in d.test]
    d.cache_dir = fix(d.cache_dir) or d.cache_dir
    cfg.out_dir = fix(cfg.out_dir) or cfg.out_dir
    cfg.export.path = fix(cfg.export.path) or cfg.export.path
    return cfg


def load_m2m_config(path: str | Path, overrides: dict[str, Any] | None = None,
                    environ: Mapping[str, str] | None = None) -> M2mTrainConfig:
    """Read and validate an M2M-Net training config (TOML; ``RTDECODE_M2M_*`` environment overrides).

    Parameters
    ----------
    path : str or Path
        The file; relative paths in it are resolved against its folder.
    overrides : dict, optional
        Top-level fields to replace (command-line options).
    environ : mapping, optional
        Environment (default ``os.environ``).

    Raises
    ------
    ConfigError
        Unreadable TOML or a field that fails validation (named by its dotted location).
    """
    path = Path(path)
    raw = {**read_document(path, "training config"), **(overrides or {})}
    cfg = load_settings(M2mTrainConfig, raw, origin=str(path),
                        environ=os.environ if environ is None else environ, prefix=ENV_PREFIX,
                        reference="docs/m2m.md")
    return _resolve(cfg, path.parent.resolve())
