"""Plausibility bounds that travel with a model: the training ranges of its inputs and outputs.

Training and the model builders record, per raw input channel and per output, the robust
range (the 0.1st and 99.9th percentiles) and the extreme range (min / max) over the data the
model was fitted on (:class:`ModelBounds`, in the model file's metadata). At run time the
daemon turns them into limits:

- **input** (:class:`InputLimits`): a sample whose magnitude exceeds
  ``preprocessing.input_range_factor`` × the channel's robust scale is clamped to that limit
  and flagged ``BAD_INPUT`` (a unit error, a saturated amplifier, a corrupt packet). The
  scale of a channel is ``max(|p0.1|, |p99.9|)``, never below the median scale of all
  channels (a channel silent in training must not flag its first spike).
- **output** (:class:`OutputLimits`): a model output outside ``[min − m·span, max + m·span]``
  of its training range (``m = decoders[].output_margin``, default 0) is clamped to the bound
  and flagged ``CLAMPED | DEGRADED``. Class probabilities are bounded by [0, 1].

A model file without bounds gets the finite-only checks and a warning at load.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

logger = logging.getLogger(__name__)

#: Robust range: these percentiles of the training data (and their mirror at 100 − p).
ROBUST_PERCENTILE = 0.1


class RangeStats(BaseModel):
    """Per-channel range of some data: robust percentiles and extremes (channel units)."""

    model_config = ConfigDict(extra="forbid")

    lo: list[float]  #: the 0.1st percentile per channel
    hi: list[float]  #: the 99.9th percentile per channel
    min: list[float]
    max: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> RangeStats:
        n = len(self.lo)
        if n == 0 or any(len(v) != n for v in (self.hi, self.min, self.max)):
            raise ValueError("lo, hi, min and max need one value per channel (and at least one)")
        a = np.array([self.min, self.lo, self.hi, self.max], dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError("range values must be finite")
        if (np.diff(a, axis=0) < 0).any():
            raise ValueError("each channel needs min <= lo <= hi <= max")
        return self

    @property
    def n(self) -> int:
        """Number of channels."""
        return len(self.lo)

    @classmethod
    def of(cls, data: np.ndarray | Sequence[np.ndarray]) -> RangeStats:
        """The range of ``data``: float (n, C) or a list of such blocks (rows are samples).

        Non-finite values are ignored; a channel without finite values raises ValueError.
        """
        blocks = [data] if isinstance(data, np.ndarray) else list(data)
        x = np.concatenate([np.asarray(b, dtype=np.float64).reshape(len(b), -1) for b in blocks])
        x = np.where(np.isfinite(x), x, np.nan)
        if np.isnan(x).all(axis=0).any():
            raise ValueError("a channel has no finite values; cannot record its range")
        p = ROBUST_PERCENTILE
        lo, hi = np.nanpercentile(x, [p, 100.0 - p], axis=0)
        return cls(lo=lo.tolist(), hi=hi.tolist(), min=np.nanmin(x, axis=0).tolist(),
                   max=np.nanmax(x, axis=0).tolist())


class ModelBounds(BaseModel):
    """The training ranges a model file carries (``ModelMetadata.bounds``).

    ``input`` is over the raw input channels (stream units, before the preprocessing chain);
    ``output`` over the model's outputs (output units): the training targets and the model's
    own predictions on its training data together.
    """

    model_config = ConfigDict(extra="forbid")

    input: RangeStats
    output: RangeStats
    data: str = ""  #: what the ranges were computed on


def model_bounds(inputs: np.ndarray | Sequence[np.ndarray], outputs: np.ndarray | Sequence[np.ndarray],
                 data: str = "") -> ModelBounds:
    """Bounds from raw training inputs float (n, C) and outputs float (m, K) (or lists of blocks)."""
    return ModelBounds(input=RangeStats.of(inputs), output=RangeStats.of(outputs), data=data)


def probability_range(n_classes: int) -> RangeStats:
    """The output range of a classifier: every class probability in [0, 1]."""
    zeros, ones = [0.0] * n_classes, [1.0] * n_classes
    return RangeStats(lo=zeros, hi=ones, min=zeros, max=ones)


@dataclass(frozen=True)
class InputLimits:
    """Largest plausible magnitude per input channel, float32 (C,), stream units."""

    limit: np.ndarray

    @classmethod
    def from_ranges(cls, ranges: Sequence[RangeStats], factor: float) -> InputLimits:
        """The most permissive limit over several models' input ranges (they share the stream)."""
        scales = np.max([np.maximum(np.abs(r.lo), np.abs(r.hi)) for r in ranges], axis=0)
        floor = float(np.median(scales))
        scales = np.maximum(scales, floor if floor > 0 else 1.0)
        return cls(limit=(factor * scales).astype(np.float32))

    def exempt(self, channels: Sequence[int]) -> InputLimits:
        """These limits with ``channels`` (e.g. a sample counter) unlimited but for finiteness."""
        limit = self.limit.copy()
        limit[list(channels)] = np.finfo(np.float32).max
        return InputLimits(limit=limit)

    @classmethod
    def uniform(cls, max_abs: float, n_channels: int) -> InputLimits:
        """One limit for every channel (``preprocessing.max_abs``)."""
        return cls(limit=np.full(n_channels, max_abs, np.float32))


@dataclass(frozen=True)
class OutputLimits:
    """Plausible output range per output: float32 (K,) ``lo`` and ``hi``, output units."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def from_range(cls, r: RangeStats, margin: float) -> OutputLimits:
        """``[min − margin·span, max + margin·span]`` per output (span floored at 1e-6)."""
        mn, mx = np.asarray(r.min), np.asarray(r.max)
        pad = margin * np.maximum(mx - mn, 1e-6)
        return cls(lo=(mn - pad).astype(np.float32), hi=(mx + pad).astype(np.float32))

    def clamp(self, y: np.ndarray) -> np.ndarray | None:
        """Clamp rows of ``y`` float32 (m, K) in place; returns the bool (m,) rows changed, or None."""
        out = (y < self.lo) | (y > self.hi)
        if not out.any():
            return None
        np.clip(y, self.lo, self.hi, out=y)
        return np.asarray(out.any(axis=1))
