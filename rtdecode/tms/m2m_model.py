"""An M2M-Net model file at run time (no torch): its metadata and ONNX Runtime predictions.

The file is one stateless ONNX graph ``efield (B, X, Y, Z) float32, |E| in V/m → mep_<head>
(B, k) float32, µV`` per head, with ``metadata_props["rtdecode.m2m"]`` (JSON,
:class:`M2mMetadata`): the volume settings that turn a coil pose and intensity into the input
(:class:`rtdecode.tms.volume.VolumeConfig`), the scalings, the synergy basis, the muscles and
units, the training ranges (``bounds``: inputs are the stimulus — coil centre mm, normal,
direction, %MSO — and outputs the MEPs, µV), provenance and held-out scores.

:class:`M2mModel` computes the volume of a pose (cached per pose), runs the graph and checks
the stimulus against the training ranges: a pose or intensity outside them is predicted but
flagged ``DEGRADED`` (extrapolation), a prediction outside the trained output range is clamped
and flagged ``CLAMPED | DEGRADED``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rtdecode.errors import ModelError
from rtdecode.runtime.bounds import ModelBounds, OutputLimits
from rtdecode.runtime.streaming import _load_session
from rtdecode.tms.coil import CoilPose3D
from rtdecode.tms.volume import VolumeConfig, VolumeModel
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

__all__ = ["M2M_METADATA_KEY", "STIMULUS_FEATURES", "M2mMetadata", "M2mModel", "Prediction",
           "is_m2m_file", "is_m2m_model", "stimulus_vector"]

#: Key of the metadata in ``metadata_props``.
M2M_METADATA_KEY = "rtdecode.m2m"
#: Names of the stimulus features the input bounds cover, in order.
STIMULUS_FEATURES = ("x_mm", "y_mm", "z_mm", "nx", "ny", "nz", "dx", "dy", "dz", "intensity_mso")
#: Heads a model may carry; output ``mep_<head>``.
HEADS = ("direct", "synergy", "both")


class M2mScaling(BaseModel):
    """Min-max ranges used inside the graph (recorded for inspection)."""

    model_config = ConfigDict(extra="forbid")
    input: tuple[float, float]
    code: tuple[float, float]
    output_lo: list[float]
    output_hi: list[float]


class M2mMetadata(BaseModel):
    """Everything needed to serve an M2M-Net model file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    kind: str = Field("event", description="triggered per pulse, stateless")
    name: str
    muscles: list[str] = Field(min_length=1)
    unit: str = "uV"
    heads: list[str] = Field(min_length=1)
    primary: str
    volume: VolumeConfig
    scaling: M2mScaling
    synergy_basis: list[list[float]] = Field(default_factory=list, description="(r, k), scaled units")
    bounds: ModelBounds
    provenance: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> M2mMetadata:
        if self.schema_version != 1:
            raise ValueError(f"schema_version {self.schema_version} is not supported (reads 1)")
        if any(h not in HEADS for h in self.heads) or self.primary not in self.heads:
            raise ValueError(f"heads {self.heads} / primary {self.primary!r} must come from {HEADS}")
        k = len(self.muscles)
        if self.bounds.input.n != len(STIMULUS_FEATURES) or self.bounds.output.n != k:
            raise ValueError(f"bounds cover {self.bounds.input.n} inputs and {self.bounds.output.n} "
                             f"outputs; expected {len(STIMULUS_FEATURES)} and {k}")
        if len(self.scaling.output_lo) != k or any(len(r) != k for r in self.synergy_basis):
            raise ValueError("scaling.output_lo and every synergy_basis row need one value per muscle")
        return self

    def to_json(self) -> str:
        """Serialise for ``metadata_props``."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))


def is_m2m_model(props: dict[str, str]) -> bool:
    """Whether ONNX ``metadata_props`` belong to an M2M-Net (event) model."""
    return M2M_METADATA_KEY in props


def is_m2m_file(path: str | Path) -> bool:
    """Whether the ONNX file at ``path`` is an M2M-Net (event) model (raises ModelError if unreadable)."""
    sess = _load_session(Path(path), ["CPUExecutionProvider"], 1)
    return is_m2m_model(sess.get_modelmeta().custom_metadata_map)


def stimulus_vector(pose: CoilPose3D, intensity_mso: float) -> np.ndarray:
    """The stimulus features float64 (10,) of :data:`STIMULUS_FEATURES`."""
    return np.concatenate([pose.center * 1e3, pose.normal, pose.direction, [intensity_mso]])


@dataclass(frozen=True)
class Prediction:
    """MEPs per muscle (µV) of one pulse, per head, and quality flags."""

    mep_uv: dict[str, np.ndarray]
    flags: int
    primary: str

    @property
    def primary_uv(self) -> np.ndarray:
        """The served head's MEPs, float32 (k,)."""
        return self.mep_uv[self.primary]


class M2mModel:
    """An M2M-Net model file (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    threads : int
        ONNX Runtime intra-op threads.
    input_margin : float
        A stimulus feature beyond ``margin × span`` outside its training range is extrapolation.
    """

    def __init__(self, path: str | Path, threads: int = 1, input_margin: float = 0.05) -> None:
        self.path = Path(path)
        self.sess = _load_session(self.path, ["CPUExecutionProvider"], threads)
        props = self.sess.get_modelmeta().custom_metadata_map
        if not is_m2m_model(props):
            raise ModelError(f"{self.path} is not an M2M-Net model (no {M2M_METADATA_KEY!r} metadata)",
                             "export it with `rtdecode m2m train`")
        try:
            self.meta = M2mMetadata.model_validate(json.loads(props[M2M_METADATA_KEY]))
        except (ValueError, ValidationError) as exc:
            raise ModelError(f"{self.path}: invalid {M2M_METADATA_KEY!r} metadata: {exc}",
                             "re-export the model with this version of rtdecode") from None
        self.volumes = VolumeModel(self.meta.volume)
        names = [o.name for o in self.sess.get_outputs()]
        if names != [f"mep_{h}" for h in self.meta.heads]:
            raise ModelError(f"{self.path}: outputs {names} do not match the heads {self.meta.heads}",
                             "re-export the model")
        b = self.meta.bounds
        span = np.asarray(b.input.max) - np.asarray(b.input.min)
        self._in_lo = np.asarray(b.input.min) - input_margin * span - 1e-9
        self._in_hi = np.asarray(b.input.max) + input_margin * span + 1e-9
        self.limits = OutputLimits.from_range(b.output, 0.0)

    @property
    def muscles(self) -> list[str]:
        """Muscle names, in output order."""
        return list(self.meta.muscles)

    def run(self, efield: np.ndarray) -> dict[str, np.ndarray]:
        """Raw graph outputs per head, float32 (B, k), for |E| volumes float32 (B, X, Y, Z)."""
        x = np.ascontiguousarray(efield, np.float32)
        if x.ndim == 3:
            x = x[None]
        if tuple(x.shape[1:]) != tuple(self.meta.volume.shape):
            raise ModelError(f"volume of shape {x.shape[1:]}; the model takes {self.meta.volume.shape}",
                             "compute volumes with the model's own volume settings")
        outs = self.sess.run(None, {"efield": x})
        return {h: np.asarray(o, np.float32) for h, o in zip(self.meta.heads, outs, strict=True)}

    def predict(self, pose: CoilPose3D, intensity_mso: float) -> Prediction:
        """One pulse: volume (cached per pose), graph, bounds checks."""
        flags = 0
        stim = stimulus_vector(pose, intensity_mso)
        if ((stim < self._in_lo) | (stim > self._in_hi)).any():
            flags |= int(Flags.DEGRADED)
        mag = self.volumes.magnitude(self.volumes.lattice_field(pose), intensity_mso)
        out = {h: y[0] for h, y in self.run(mag).items()}
        if not all(np.isfinite(y).all() for y in out.values()):
            raise ModelError(f"{self.path} produced non-finite MEPs", "re-export the model")
        for h, y in out.items():
            row = y[None].copy()
            if self.limits.clamp(row) is not None:
                out[h] = row[0]
                if h == self.meta.primary:
                    flags |= int(Flags.CLAMPED | Flags.DEGRADED)
        return Prediction(out, flags, self.meta.primary)
