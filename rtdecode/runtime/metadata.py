"""Model metadata carried inside each ONNX file (``metadata_props["rtdecode"]``, JSON).

It is what makes train/serve parity enforceable: the preprocessing chain a model
was trained with, the rates, channels, the streaming state layout, delay,
receptive field, provenance and held-out metrics all travel with the weights.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rtdecode.errors import ModelError
from rtdecode.runtime.bounds import ModelBounds

METADATA_KEY = "rtdecode"
SCHEMA_VERSION = 1


class StateSpec(BaseModel):
    """One streaming state tensor: input ``name``, output ``name + '_out'``, fixed ``shape``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[int]


class OutputSpec(BaseModel):
    """One output channel of ``y``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    unit: str = ""


class ModelMetadata(BaseModel):
    """Everything the service needs to serve a streaming model.

    ``receptive_field`` and ``delay`` are counted in model frames (at ``model_rate_hz``).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    name: str
    task: Literal["regression", "classification"] = "regression"
    rate_hz: float = Field(..., gt=0, description="input stream rate the model expects, Hz")
    channels: int = Field(..., ge=1)
    channel_names: list[str] = Field(default_factory=list)
    input_unit: str = ""
    grid_shape: list[int] | None = None
    preprocessing: list[dict[str, Any]] = Field(default_factory=list)
    model_rate_hz: float = Field(..., gt=0, description="frame rate after preprocessing, Hz")
    model_channels: int = Field(..., ge=1, description="channels of x after preprocessing")
    outputs: list[OutputSpec]
    receptive_field: int = Field(..., ge=1)
    delay: int = Field(0, ge=0)
    states: list[StateSpec] = Field(default_factory=list)
    provenance: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    bounds: ModelBounds | None = Field(
        None, description="training ranges of the raw inputs and of the outputs (plausibility "
                          "limits at run time; rtdecode.runtime.bounds)")

    @model_validator(mode="after")
    def _check(self) -> ModelMetadata:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported "
                             f"(this rtdecode reads {SCHEMA_VERSION})")
        if self.channel_names and len(self.channel_names) != self.channels:
            raise ValueError("channel_names must have one entry per channel")
        if self.bounds is not None and (self.bounds.input.n != self.channels
                                        or self.bounds.output.n != len(self.outputs)):
            raise ValueError(f"bounds cover {self.bounds.input.n} inputs and {self.bounds.output.n} "
                             f"outputs; the model has {self.channels} and {len(self.outputs)}")
        return self

    def to_json(self) -> str:
        """Serialise for ``metadata_props``."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))

    @classmethod
    def from_props(cls, props: dict[str, str], origin: str) -> ModelMetadata:
        """Parse from an ONNX ``metadata_props`` mapping.

        Raises
        ------
        ModelError
            When the key is missing or its content is invalid.
        """
        if METADATA_KEY not in props:
            raise ModelError(
                f"{origin} has no '{METADATA_KEY}' metadata: it was not exported by rtdecode",
                "export the model with `rtdecode export` or scripts/build_models.py",
            )
        try:
            return cls.model_validate(json.loads(props[METADATA_KEY]))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ModelError(f"{origin}: invalid '{METADATA_KEY}' metadata: {exc}",
                             "re-export the model with this version of rtdecode") from None
