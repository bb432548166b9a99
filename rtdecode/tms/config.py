"""The ``[tms]`` config section: where pulses come from and how each one is measured.

Example
-------
.. code-block:: toml

    [tms]
    topic = "tms"
    units = "uV"                       # units of the EMG stream's samples

    [tms.markers]                      # pulses from an LSL marker stream ...
    name = "rtdecode-sim-tms-markers"

    # [tms.trigger]                    # ... or from a trigger channel of the EMG stream
    # channel = "TRIG"
    # threshold = 1.0

    [tms.measure]
    post_ms = [20, 50]
    preactivation_uv = 50

Every window is in ms relative to the pulse; a window ``[a, b]`` holds the samples whose time
after the pulse lies in ``[a, b]`` (both ends included). See docs/tms.md.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

logger = logging.getLogger(__name__)

__all__ = ["MarkerStreamConfig", "MeasureConfig", "TmsConfig", "TriggerConfig", "UV_PER_UNIT"]

#: Microvolts per unit of the EMG stream, per ``tms.units``.
UV_PER_UNIT = {"uV": 1.0, "mV": 1e3, "V": 1e6}

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MarkerStreamConfig(_Strict):
    """An LSL marker stream with one marker per pulse (string or numeric)."""

    name: str | None = Field(None, description="LSL name of the marker stream")
    type: str | None = Field(None, description="LSL type of the marker stream (e.g. Markers)")
    source_id: str | None = Field(None, description="LSL source_id of the marker stream")
    resolve_timeout_s: float = Field(10.0, gt=0, description="how long to look for it at start-up")
    accept: list[str] | None = Field(
        None, description="plain (non-JSON) marker labels that are pulses, e.g. [\"TMS\", \"1\"]; "
        "others are counted and ignored (default: every marker is a pulse)")

    @model_validator(mode="after")
    def _need_a_selector(self) -> MarkerStreamConfig:
        if not (self.name or self.type or self.source_id):
            raise ValueError("set at least one of tms.markers.name, type or source_id so the "
                             "daemon knows which marker stream to open")
        return self


class TriggerConfig(_Strict):
    """Pulses from edges of a trigger channel inside the EMG stream."""

    channel: int | str = Field(..., description="trigger channel: index (from 0) or label")
    threshold: float = Field(..., description="edge threshold, stream units")
    edge: Literal["rising", "falling"] = Field("rising", description="which crossing is a pulse")
    refractory_ms: float = Field(
        50.0, ge=0, description="crossings this soon after a pulse are not new pulses")


class MeasureConfig(_Strict):
    """The chain before measurement and the measurement windows (ms after the pulse)."""

    chain: list[dict[str, Any]] = Field(
        default_factory=list,
        description="filters run over each pulse's epoch after blanking (stage specs as in "
        "docs/models.md, only stages that keep the rate and channels, e.g. butter); default [] "
        "measures the samples as recorded")
    settle_ms: float = Field(0.0, ge=0, le=2000, description="the chain also runs over this much "
                             "signal before the pre-pulse window (for filters with long transients)")
    blank_ms: tuple[float, float] = Field(
        (-1.0, 5.0), description="stimulus artefact: replaced by a straight line before the chain")
    pre_ms: tuple[float, float] = Field(
        (-100.0, -5.0), description="pre-pulse window: background EMG RMS (pre-activation check)")
    post_ms: tuple[float, float] = Field(
        (20.0, 50.0), description="post-pulse window: peak to peak, area and the end of the onset "
        "search")
    onset_from_ms: float = Field(
        10.0, ge=0, description="onset latency is searched from here to the end of post_ms")
    onset_sd: float = Field(
        5.0, gt=0, description="onset: first sample deviating from the pre-pulse mean by more than "
        "onset_sd x the pre-pulse RMS (and at least response_uv / 2)")
    preactivation_uv: float = Field(
        50.0, gt=0, description="pre-pulse RMS above this (µV) flags the channel PREACTIVATED")
    response_uv: float = Field(
        50.0, gt=0, description="peak to peak below this (µV) flags the channel NO_RESPONSE "
        "(latency 0)")

    @field_validator("blank_ms", "pre_ms", "post_ms")
    @classmethod
    def _ordered(cls, v: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError(f"{info.field_name} must be [start, end] with start < end (ms), "
                             f"got {list(v)}")
        return v

    @model_validator(mode="after")
    def _windows_fit(self) -> MeasureConfig:
        if self.pre_ms[1] > 0:
            raise ValueError(f"pre_ms {list(self.pre_ms)} must end at or before the pulse (<= 0 ms)")
        if self.post_ms[0] < 0:
            raise ValueError(f"post_ms {list(self.post_ms)} must start at or after the pulse")
        if not self.blank_ms[1] <= self.post_ms[0]:
            raise ValueError(f"blank_ms {list(self.blank_ms)} must end before post_ms "
                             f"{list(self.post_ms)} starts")
        if not self.onset_from_ms < self.post_ms[1]:
            raise ValueError(f"onset_from_ms {self.onset_from_ms} must lie before the end of post_ms")
        return self

    @property
    def span_ms(self) -> float:
        """Signal needed per pulse, from the start of the settling to the end of the window, ms."""
        return self.settle_ms + self.post_ms[1] - min(self.pre_ms[0], self.blank_ms[0])


class TmsConfig(_Strict):
    """TMS pulse events and per-channel MEP measurement, published on every pulse."""

    topic: str = Field("tms", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_.\-/]+$",
                       description="topic of the event messages")
    channels: list[int | str] | None = Field(
        None, min_length=1, description="measured channels (indices from 0 or labels), in output "
        "order; default: every channel except the trigger channel")
    units: Literal["uV", "mV", "V"] = Field(
        "uV", description="units of the EMG stream (the published measures are in µV and ms)")
    markers: MarkerStreamConfig | None = Field(None, description="pulses from a marker stream")
    trigger: TriggerConfig | None = Field(None, description="pulses from a trigger channel")
    measure: MeasureConfig = Field(default_factory=MeasureConfig,  # type: ignore[arg-type]
                                   description="chain and windows: the [tms.measure] table")
    max_wait_s: float = Field(
        1.0, gt=0, le=60, description="a pulse waits this long after its window's end for the "
        "samples; then it is published flagged NO_SAMPLES")
    buffer_s: float = Field(
        10.0, gt=0, le=600, description="input kept for markers that arrive after their samples")

    @model_validator(mode="after")
    def _one_pulse_source(self) -> TmsConfig:
        if (self.markers is None) == (self.trigger is None):
            raise ValueError("set exactly one of [tms.markers] (an LSL marker stream) or "
                             "[tms.trigger] (a trigger channel in the EMG stream)")
        if self.topic == "_status":
            raise ValueError("tms.topic '_status' is reserved for the status message")
        need_s = self.measure.span_ms / 1e3 + self.max_wait_s
        if self.buffer_s < need_s:
            raise ValueError(f"tms.buffer_s = {self.buffer_s:g} s is shorter than one pulse's span "
                             f"plus max_wait_s ({need_s:.3f} s); raise buffer_s")
        return self
