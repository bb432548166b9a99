"""JSON-able specs of the preprocessing stages.

A preprocessing chain is a list of stage specs, each a small pydantic model with a
``kind`` discriminator, e.g.::

    [
        {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45, 55]},
        {"kind": "butter", "btype": "highpass", "order": 4, "cutoff_hz": 20},
        {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
        {"kind": "decimate", "factor": 20},
    ]

The kinds are registered once, with their stage classes, in :mod:`rtdecode.dsp.registry`
(which also parses chains). The specs hold only what can be checked without knowing the input: checks that
need the sample rate or channel count (a cutoff below Nyquist, one mean per
channel) happen when the chain is built (:func:`rtdecode.dsp.build_chain`).
Units are part of the field names (``cutoff_hz``, ``window_s``).
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BinSpec",
    "ButterSpec",
    "CarSpec",
    "ClipSpec",
    "CrossingsSbpSpec",
    "CrossingsSpec",
    "SqrtSpec",
    "TdSpec",
    "DecimateSpec",
    "GridSpec",
    "RectifySpec",
    "RmsSpec",
    "SbpSpec",
    "ScaleSpec",
    "SelectSpec",
    "SmoothSpec",
    "SpecBase",
    "StandardizeSpec",
    "spec_to_dict",
]

_BAND_TYPES = ("bandpass", "bandstop")


class SpecBase(BaseModel):
    """Common configuration: unknown fields are rejected, NaN / inf are refused.

    Every spec has a ``kind`` (its registry key, :mod:`rtdecode.dsp.registry`).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: str


#: Arithmetic of a stage that offers a choice: float64 (the default) or float32, which halves
#: the memory traffic — what broadband chains (1,024 channels at 30 kHz) cost — at ~7
#: significant digits (the iBCI front end uses it; docs/ibci.md).
Precision = Literal["float64", "float32"]


def _as_list(value: float | list[float]) -> list[float]:
    return list(value) if isinstance(value, list) else [value]


class ScaleSpec(SpecBase):
    """``y = (x - offset) * gain`` (per channel or for all channels).

    Attributes
    ----------
    gain : float or list of float
        Multiplier, one value for all channels or one per channel.
    offset : float or list of float
        Subtracted before the gain, in input units; scalar or one per channel.
    """

    kind: Literal["scale"] = "scale"
    gain: float | list[float]
    offset: float | list[float] = 0.0

    @field_validator("gain", "offset")
    @classmethod
    def _non_empty(cls, v: float | list[float], info: ValidationInfo) -> float | list[float]:
        if isinstance(v, list) and not v:
            raise ValueError(
                f"{info.field_name} is an empty list; give a scalar or one per channel"
            )
        return v


class ButterSpec(SpecBase):
    """Causal Butterworth IIR filter (second-order sections with kept state).

    Attributes
    ----------
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        Filter type.
    order : int
        Filter order, 1..10 (band types have 2*order poles, as in ``scipy.signal.butter``).
    cutoff_hz : float or (float, float)
        Cut-off frequency in Hz; a (low, high) pair for band types. Must be below the
        Nyquist frequency of the stage's input (checked when the chain is built).
    precision : {"float64", "float32"}
        Arithmetic of the filter and its state (see :data:`Precision`).
    """

    kind: Literal["butter"] = "butter"
    btype: Literal["lowpass", "highpass", "bandpass", "bandstop"]
    order: int = Field(ge=1, le=10)
    cutoff_hz: float | tuple[float, float]
    precision: Precision = "float64"

    @field_validator("cutoff_hz")
    @classmethod
    def _check_cutoff(
        cls, v: float | tuple[float, float], info: ValidationInfo
    ) -> float | tuple[float, float]:
        btype = info.data.get("btype")
        if btype in _BAND_TYPES:
            if not isinstance(v, tuple):
                raise ValueError(
                    f"cutoff_hz must be a [low, high] pair in Hz for btype={btype!r}, got {v!r}"
                )
            lo, hi = v
            if not 0.0 < lo < hi:
                raise ValueError(f"cutoff_hz must satisfy 0 < low < high, got [{lo}, {hi}]")
        elif btype is not None:
            if isinstance(v, tuple):
                raise ValueError(
                    f"cutoff_hz must be a single frequency in Hz for btype={btype!r}, got {list(v)}"
                )
            if v <= 0.0:
                raise ValueError(f"cutoff_hz must be > 0 Hz, got {v}")
        return v


class RectifySpec(SpecBase):
    """Full-wave rectification, ``y = |x|``."""

    kind: Literal["rectify"] = "rectify"


class _WindowSpec(SpecBase):
    """Causal FIR smoothing window shared by ``rms`` and ``smooth``.

    ``boxcar``: ``N = round(window_s * rate)`` equal taps, delay ``(N - 1) / 2 / rate``.
    ``gaussian``: a Gaussian of ``sigma_s`` truncated at ±3σ, shifted to be causal,
    delay 3σ (rounded to a whole sample). For ``gaussian`` give ``sigma_s`` or
    ``window_s`` (= 6σ, the kernel support); the other is filled in.
    """

    shape: Literal["boxcar", "gaussian"] = "boxcar"
    window_s: float | None = Field(default=None, gt=0.0)
    sigma_s: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _check_window(self) -> _WindowSpec:
        if self.shape == "boxcar":
            if self.window_s is None:
                raise ValueError("window_s (s) is required for shape='boxcar'")
            if self.sigma_s is not None:
                raise ValueError(
                    "sigma_s only applies to shape='gaussian'; remove it or set shape='gaussian'"
                )
        else:
            if self.sigma_s is None and self.window_s is None:
                raise ValueError("shape='gaussian' needs sigma_s (s) (or window_s = 6 * sigma_s)")
            if self.sigma_s is None:
                assert self.window_s is not None
                self.sigma_s = self.window_s / 6.0
            elif self.window_s is None:
                self.window_s = 6.0 * self.sigma_s
            elif not math.isclose(self.window_s, 6.0 * self.sigma_s, rel_tol=1e-6):
                raise ValueError(
                    f"window_s={self.window_s} disagrees with sigma_s={self.sigma_s}: the "
                    "gaussian window spans ±3 sigma (window_s = 6 * sigma_s); give only sigma_s"
                )
        return self


class RmsSpec(_WindowSpec):
    """Moving RMS envelope, ``y = sqrt(FIR(x**2))`` with a causal window (see ``shape``)."""

    kind: Literal["rms"] = "rms"


class SmoothSpec(_WindowSpec):
    """Causal FIR smoothing, ``y = FIR(x)`` with a boxcar or Gaussian window."""

    kind: Literal["smooth"] = "smooth"


class DecimateSpec(SpecBase):
    """Keep every ``factor``-th sample, after an optional anti-alias low-pass.

    Attributes
    ----------
    factor : int
        Decimation factor (>= 1); output sample k is input sample ``k*factor + factor - 1``.
    antialias : bool
        Apply an order-8 Butterworth low-pass at 0.8 × the output Nyquist frequency first.
    """

    kind: Literal["decimate"] = "decimate"
    factor: int = Field(ge=1)
    antialias: bool = True


class BinSpec(SpecBase):
    """Non-overlapping bins of ``factor`` samples reduced by ``sum`` or ``mean``."""

    kind: Literal["bin"] = "bin"
    factor: int = Field(ge=1)
    reduce: Literal["sum", "mean"] = "sum"


class StandardizeSpec(SpecBase):
    """``y = (x - mean) / std`` with per-channel (or scalar) statistics."""

    kind: Literal["standardize"] = "standardize"
    mean: float | list[float]
    std: float | list[float]

    @field_validator("mean", "std")
    @classmethod
    def _check_stats(cls, v: float | list[float], info: ValidationInfo) -> float | list[float]:
        values = _as_list(v)
        if not values:
            raise ValueError(
                f"{info.field_name} is an empty list; give a scalar or one per channel"
            )
        if info.field_name == "std":
            bad = [i for i, s in enumerate(values) if s <= 0.0]
            if bad:
                raise ValueError(
                    f"std must be > 0 for every channel; entries {bad[:5]} are <= 0 "
                    "(drop constant channels with a 'select' stage)"
                )
        return v


class SelectSpec(SpecBase):
    """Pick input channels (0-based indices, in the given order)."""

    kind: Literal["select"] = "select"
    channels: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)


class GridSpec(SpecBase):
    """Arrange channels on an electrode grid (row-major), -1 marks an empty cell (outputs 0).

    Attributes
    ----------
    shape : (int, int)
        Grid (rows, cols).
    order : list of int
        ``rows * cols`` entries in row-major order; each an input channel index or -1.
    """

    kind: Literal["grid"] = "grid"
    shape: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    order: list[Annotated[int, Field(ge=-1)]]

    @field_validator("order")
    @classmethod
    def _check_order(cls, v: list[int], info: ValidationInfo) -> list[int]:
        shape = info.data.get("shape")
        if shape is not None and len(v) != shape[0] * shape[1]:
            raise ValueError(
                f"order has {len(v)} entries but shape {tuple(shape)} has "
                f"{shape[0] * shape[1]} cells; give one entry per cell (row-major, -1 = empty)"
            )
        used = [c for c in v if c >= 0]
        if len(set(used)) != len(used):
            dup = sorted({c for c in used if used.count(c) > 1})
            raise ValueError(f"order lists input channel(s) {dup[:5]} more than once")
        return v


class ClipSpec(SpecBase):
    """``y = clip(x, min_value, max_value)``; either bound may be omitted (but not both)."""

    kind: Literal["clip"] = "clip"
    min_value: float | None = None
    max_value: float | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> ClipSpec:
        if self.min_value is None and self.max_value is None:
            raise ValueError("clip needs min_value and/or max_value")
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise ValueError(
                f"min_value={self.min_value} is above max_value={self.max_value}; swap them"
            )
        return self


class CarSpec(SpecBase):
    """Common average reference: each channel minus the mean of its group's reference channels.

    Attributes
    ----------
    groups : list of list of int, optional
        Channel groups (0-based indices, e.g. one group per electrode array), each referenced
        to the mean of its own channels; channels in no group pass through unchanged.
        Default: one group of every channel.
    exclude : list of int
        Channels left out of every mean and passed through unchanged: bad or noisy
        electrodes, non-neural channels (a sync or sample-index channel).
    precision : {"float64", "float32"}
        Arithmetic of the stage (see :data:`Precision`).
    """

    kind: Literal["car"] = "car"
    groups: list[list[Annotated[int, Field(ge=0)]]] | None = None
    exclude: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    precision: Precision = "float64"

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, v: list[list[int]] | None) -> list[list[int]] | None:
        if v is None:
            return v
        if not v or any(not g for g in v):
            raise ValueError("groups must be a non-empty list of non-empty channel lists "
                             "(omit it for one group of every channel)")
        seen = [c for g in v for c in g]
        if len(set(seen)) != len(seen):
            dup = sorted({c for c in seen if seen.count(c) > 1})
            raise ValueError(f"channel(s) {dup[:5]} appear in more than one group (or twice)")
        return v


class _BinnedSpec(SpecBase):
    """Non-overlapping bins of ``bin_s`` seconds (a whole number of input samples)."""

    bin_s: float = Field(gt=0.0)


class _CrossingsFields(_BinnedSpec):
    """Threshold-crossing fields shared by ``crossings`` and ``crossings_sbp``.

    Attributes
    ----------
    threshold : float
        Threshold as a multiple of each channel's noise RMS: negative (e.g. -4.5) counts
        negative-going crossings (a sample below ``threshold * noise_rms`` whose predecessor
        was not), positive counts positive-going ones.
    noise_rms : float or list of float
        Noise RMS of the stage's input, per channel (or one for all), input units (µV):
        estimated over a calibration period (:func:`rtdecode.ibci.thresholds.noise_rms`).
    """

    threshold: float
    noise_rms: float | list[float]

    @field_validator("threshold")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0.0:
            raise ValueError("threshold must be a non-zero multiple of the noise RMS (e.g. -4.5)")
        return v

    @field_validator("noise_rms")
    @classmethod
    def _positive(cls, v: float | list[float]) -> float | list[float]:
        values = _as_list(v)
        if not values:
            raise ValueError("noise_rms is an empty list; give a scalar or one per channel")
        bad = [i for i, s in enumerate(values) if s <= 0.0]
        if bad:
            raise ValueError(f"noise_rms must be > 0 for every channel; entries {bad[:5]} are <= 0 "
                             "(leave dead channels out with a 'select' stage)")
        return v


class CrossingsSpec(_CrossingsFields):
    """Threshold crossings counted in bins of ``bin_s`` (one count per channel and bin)."""

    kind: Literal["crossings"] = "crossings"


class SbpSpec(_BinnedSpec):
    """Spike-band power per channel and bin of ``bin_s``.

    Attributes
    ----------
    measure : {"square", "abs"}
        ``square``: mean of x² (input units², e.g. µV²); ``abs``: mean of |x| (input units).
    """

    kind: Literal["sbp"] = "sbp"
    measure: Literal["square", "abs"] = "square"


class CrossingsSbpSpec(_CrossingsFields):
    """``crossings`` and ``sbp`` of the same input in one pass: output channels are the C
    crossing counts, then the C powers (2 C per bin)."""

    kind: Literal["crossings_sbp"] = "crossings_sbp"
    measure: Literal["square", "abs"] = "square"


class SqrtSpec(SpecBase):
    """``y = sqrt(max(x, 0))``: variance-stabilising transform of spike counts (negatives → 0)."""

    kind: Literal["sqrt"] = "sqrt"


class TdSpec(SpecBase):
    """Time-domain EMG features (MAV, WL, ZC, SSC, RMS) of every channel over a causal window."""

    kind: Literal["td"] = "td"
    window_s: float = Field(gt=0, description="window, s (at least 2 samples)")
    threshold: float = Field(0.0, ge=0, description="ZC / SSC dead zone, input units")
    features: list[Literal["mav", "wl", "zc", "ssc", "rms"]] = Field(
        default_factory=lambda: ["mav", "wl", "zc", "ssc"], min_length=1)  # type: ignore[arg-type]


def spec_to_dict(spec: SpecBase) -> dict[str, Any]:
    """Normalised JSON-serialisable dict of a spec (``kind`` first, defaults filled in)."""
    data = spec.model_dump(mode="json")
    return {"kind": data.pop("kind"), **data}
