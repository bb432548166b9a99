"""Small value types shared by sources, stages, runtime and sinks."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Flags(enum.IntFlag):
    """Per-message quality flags (bit field, ``uint32`` on the wire).

    ``OK`` (0) means a fresh estimate from healthy input and models.
    """

    OK = 0
    WARMUP = 1 << 0  #: model receptive field / filters not yet filled
    DEGRADED = 1 << 1  #: a decoder or part of the input is excluded / repaired
    STALE = 1 << 2  #: no new input within ``stale_after_s``; value is the safe value
    HOLD = 1 << 3  #: value is a held (repeated) value, not a fresh estimate
    GAP = 1 << 4  #: a gap (lost samples / timestamp jump) was detected in the input
    #: non-finite or implausible input samples were repaired / clamped (this row depends on them)
    BAD_INPUT = 1 << 5
    #: the model's output was non-finite (replaced by a held value) or outside its training
    #: range (clamped to the bound)
    CLAMPED = 1 << 6
    #: the value is older than ``service.latency_budget_ms`` when published (the daemon is behind)
    LATE = 1 << 7


@dataclass(frozen=True)
class Chunk:
    """A block of new input samples from a source.

    Attributes
    ----------
    samples : float32 (n, C)
        New samples, physical units of the stream.
    t_lsl : float64 (n,)
        LSL time of each sample on the local clock, s.
    first_index : int
        Running index of the first sample since the source opened.
    flags : int
        ``Flags`` bits the chunk carries from the source to the outputs: ``GAP`` (lost
        samples, a timestamp jump, samples dropped after an outage), ``BAD_INPUT`` once the
        input checks repaired or clamped samples in it.
    """

    samples: np.ndarray
    t_lsl: np.ndarray
    first_index: int
    flags: int = 0

    @property
    def n(self) -> int:
        """Number of samples in the chunk."""
        return int(self.samples.shape[0])
