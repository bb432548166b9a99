"""The ``[record]`` and ``[lsl_outlet]`` config sections (registered in :mod:`rtdecode.config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RecordConfig(_Strict):
    """Record the session to HDF5: input samples, every published frame, config and models."""

    enabled: bool = Field(True, description="record this run (the section's presence alone turns "
                          "recording on; false keeps the section but records nothing)")
    dir: Path = Field(Path("sessions"), description="folder of the session files (created; relative "
                      "paths are from the daemon's working directory)")
    prefix: str = Field("session", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$",
                        description="file name prefix: PREFIX-YYYYmmdd-HHMMSS-PID_000.h5, _001 ...")
    flush_interval_s: float = Field(
        1.0, gt=0, le=60, description="the writer flushes the file this often: a crash or kill -9 "
        "loses at most this much (plus what is still queued)")
    queue_mb: float = Field(
        64.0, gt=0, le=4096, description="size of the queue between the loop and the writer process "
        "(shared memory, MB of samples and frames; 64 MB hold ~2 min of 64 ch @ 2048 Hz); when full, "
        "new items are dropped and counted, never waited for")
    rotate_mb: float | None = Field(
        1024.0, gt=0, description="start a new file part after this many MB (none: never)")
    rotate_s: float | None = Field(
        None, gt=0, description="start a new file part after this many seconds (none: never)")
    compression: Literal["none", "lzf", "gzip"] = Field(
        "none", description="HDF5 filter of the sample and payload datasets (costs the writer "
        "process CPU, not the loop)")
    chunk_rows: int = Field(4096, ge=64, le=1_048_576,
                            description="HDF5 chunk length of the sample and message tables, rows")
    writer_priority: Literal["idle", "low", "normal"] = Field(
        "idle", description="CPU priority of the writer process: idle (SCHED_IDLE: it runs only on CPU "
        "time nothing else wants, so the disk work never delays the decoding loop; on a machine "
        "saturated for minutes the queue fills and drops are counted), low (nice +10) or normal "
        "(the daemon's own)")


class LslOutletConfig(_Strict):
    """Publish each decoder topic (and the fused one) also as an LSL stream."""

    enabled: bool = Field(True, description="create the outlets")
    prefix: str = Field("rtdecode-", max_length=64,
                        description="LSL stream name = prefix + topic (type 'Predictions')")
    flags_channel: bool = Field(True, description="add a last channel carrying the message flags "
                                "(float32; exact for the flag bits)")

    @model_validator(mode="after")
    def _no_quote(self) -> LslOutletConfig:
        if "'" in self.prefix:
            raise ValueError("lsl_outlet.prefix must not contain a quote (LSL predicates break)")
        return self
