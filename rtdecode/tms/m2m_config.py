"""The ``[tms.m2m]`` config table: predict every pulse's MEPs with an M2M-Net model.

Example
-------
.. code-block:: toml

    [tms.m2m]
    model = "models/m2m_sim.onnx"
    topic = "m2m"
    rmt_mso = 39.7        # converts %RMT markers without an intensity_mso field

See docs/m2m.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

__all__ = ["M2mServeConfig"]


class M2mServeConfig(BaseModel):
    """Predicted MEPs on each pulse, then the measured ones beside them (docs/m2m.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: Path = Field(..., description="M2M-Net model file (.onnx from `rtdecode m2m train`)")
    topic: str = Field("m2m", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_.\-/]+$",
                       description="topic of the prediction events")
    head: Literal["direct", "synergy", "both"] | None = Field(
        None, description="head to serve (default: the model's primary head)")
    rmt_mso: float | None = Field(
        None, gt=0, le=100, description="resting motor threshold, %MSO: converts markers in %RMT "
        "that carry no intensity_mso field")
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime threads of the prediction worker")
    cache_size: int = Field(256, ge=0, description="coil poses whose lattice field is kept")
