"""JSON-able specs of the preprocessing stages.

A preprocessing chain is a list of stage specs, each a small pydantic model with a
``kind`` discriminator, e.g.::

    [
        {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45, 55]},
        {"kind": "butter", "btype": "highpass", "order": 4, "cutoff_hz": 20},
        {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
        {"kind": "decimate", "factor": 20},
    ]

The specs hold only what can be checked without knowing the input: checks that
need the sample rate or channel count (a cutoff below Nyquist, one mean per
channel) happen when the chain is built (:func:`rtdecode.dsp.build_chain`).
Units are part of the field names (``cutoff_hz``, ``window_s``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "BinSpec",
    "ButterSpec",
    "ClipSpec",
    "DecimateSpec",
    "GridSpec",
    "RectifySpec",
    "RmsSpec",
    "ScaleSpec",
    "SelectSpec",
    "SmoothSpec",
    "SqrtSpec",
    "StageSpec",
    "StandardizeSpec",
    "parse_chain",
    "parse_stage",
    "spec_to_dict",
]

_BAND_TYPES = ("bandpass", "bandstop")


class _SpecBase(BaseModel):
    """Common configuration: unknown fields are rejected, NaN / inf are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _as_list(value: float | list[float]) -> list[float]:
    return list(value) if isinstance(value, list) else [value]


class ScaleSpec(_SpecBase):
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


class ButterSpec(_SpecBase):
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
    """

    kind: Literal["butter"] = "butter"
    btype: Literal["lowpass", "highpass", "bandpass", "bandstop"]
    order: int = Field(ge=1, le=10)
    cutoff_hz: float | tuple[float, float]

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


class RectifySpec(_SpecBase):
    """Full-wave rectification, ``y = |x|``."""

    kind: Literal["rectify"] = "rectify"


class _WindowSpec(_SpecBase):
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


class DecimateSpec(_SpecBase):
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


class BinSpec(_SpecBase):
    """Non-overlapping bins of ``factor`` samples reduced by ``sum`` or ``mean``."""

    kind: Literal["bin"] = "bin"
    factor: int = Field(ge=1)
    reduce: Literal["sum", "mean"] = "sum"


class StandardizeSpec(_SpecBase):
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


class SelectSpec(_SpecBase):
    """Pick input channels (0-based indices, in the given order)."""

    kind: Literal["select"] = "select"
    channels: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)


class GridSpec(_SpecBase):
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


class ClipSpec(_SpecBase):
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


class SqrtSpec(_SpecBase):
    """``y = sqrt(max(x, 0))``: variance-stabilising transform of spike counts (negatives → 0)."""

    kind: Literal["sqrt"] = "sqrt"


_SPEC_TYPES: tuple[type[BaseModel], ...] = (
    ScaleSpec,
    ButterSpec,
    RectifySpec,
    RmsSpec,
    SmoothSpec,
    DecimateSpec,
    BinSpec,
    StandardizeSpec,
    SelectSpec,
    GridSpec,
    ClipSpec,
    SqrtSpec,
)

#: Any stage spec; pydantic picks the model from the ``kind`` field.
StageSpec = Annotated[
    Union[  # noqa: UP007  (a runtime union object is needed for the discriminator)
        ScaleSpec,
        ButterSpec,
        RectifySpec,
        RmsSpec,
        SmoothSpec,
        DecimateSpec,
        BinSpec,
        StandardizeSpec,
        SelectSpec,
        GridSpec,
        ClipSpec,
        SqrtSpec,
    ],
    Field(discriminator="kind"),
]

_KINDS: dict[str, type[BaseModel]] = {t.model_fields["kind"].default: t for t in _SPEC_TYPES}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(StageSpec)


def _fields_of(kind: str) -> str:
    model = _KINDS[kind]
    return ", ".join(name for name in model.model_fields if name != "kind") or "(none)"


def _describe(err: ErrorDetails, kind: str | None) -> tuple[str, str]:
    """One pydantic error → (what, fix) naming the field."""
    etype = err["type"]
    loc = [str(p) for p in err["loc"]]
    kinds = ", ".join(_KINDS)
    if etype == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", err.get("input"))
        return f"field 'kind': unknown stage kind {tag!r}", f"use one of: {kinds}"
    if etype == "union_tag_not_found":
        return "field 'kind' is missing", f'add "kind": one of {kinds}'
    if etype in ("model_attributes_type", "model_type", "dict_type"):
        return (
            "a stage spec must be a mapping with a 'kind' field, "
            f"got {type(err['input']).__name__}",
            'write each stage as {"kind": ..., <fields>}',
        )
    # loc = (kind tag, field, [union member / index ...])
    field = loc[1] if len(loc) > 1 else None
    fix_fields = f"fields of {kind!r}: {_fields_of(kind)}" if kind in _KINDS else ""
    if etype == "extra_forbidden":
        return f"unknown field {field!r} for kind {kind!r}", f"remove it; {fix_fields}"
    if etype == "missing":
        return f"field {field!r} is required for kind {kind!r}", f"add it; {fix_fields}"
    msg = err["msg"]
    if etype == "value_error":  # our own checks: the message already shows the value
        msg = msg.removeprefix("Value error, ")
    else:
        msg = f"{msg} (got {err.get('input')!r})"
    if field is None:
        return f"{kind!r} spec is invalid: {msg}", f"correct the spec; {fix_fields}"
    item = "".join(f"[{p}]" for p in err["loc"][2:] if isinstance(p, int))
    return f"field {field!r}{item} is invalid: {msg}", f"correct {field!r}; {fix_fields}"


def parse_stage(spec: Any, index: int | None = None) -> StageSpec:
    """Validate one stage spec.

    Parameters
    ----------
    spec : dict or StageSpec
        A mapping with a ``kind`` field, or an already built spec model (re-validated).
    index : int, optional
        Position in the chain, used in the error message.

    Returns
    -------
    StageSpec
        The validated spec model.

    Raises
    ------
    ConfigError
        Unknown kind, unknown or missing field, or a value out of range; the message
        names the stage index and the field.
    """
    if isinstance(spec, _SPEC_TYPES):
        spec = spec.model_dump()
    where = "preprocessing stage" + (f" {index}" if index is not None else "")
    try:
        return _ADAPTER.validate_python(spec)
    except ValidationError as exc:
        kind = spec.get("kind") if isinstance(spec, dict) else None
        errors = exc.errors(include_url=False)
        # A union field (float | tuple) reports one error per member; the first says enough.
        what, fix = _describe(errors[0], kind if isinstance(kind, str) else None)
        n_more = len({tuple(e["loc"][:2]) for e in errors}) - 1
        more = f" (and {n_more} more problem(s))" if n_more > 0 else ""
        label = f" ({kind!r})" if isinstance(kind, str) else ""
        raise ConfigError(f"{where}{label}: {what}{more}", fix) from None


def parse_chain(specs: Sequence[Any]) -> list[StageSpec]:
    """Validate a preprocessing chain given as a list of stage specs.

    Parameters
    ----------
    specs : list of dict or StageSpec
        Stage specs in processing order (JSON-like dicts or spec models).

    Returns
    -------
    list of StageSpec
        The validated specs (defaults filled in).

    Raises
    ------
    ConfigError
        If the chain is not a list, or a stage is invalid (the message names the stage
        index and the field).
    """
    if isinstance(specs, (str, bytes, dict)) or not isinstance(specs, Sequence):
        raise ConfigError(
            f"a preprocessing chain must be a list of stage specs, got {type(specs).__name__}",
            'write it as a list, e.g. [{"kind": "rectify"}]; use [] for no preprocessing',
        )
    return [parse_stage(s, i) for i, s in enumerate(specs)]


def spec_to_dict(spec: StageSpec) -> dict[str, Any]:
    """Normalised JSON-serialisable dict of a spec (``kind`` first, defaults filled in)."""
    data = spec.model_dump(mode="json")
    return {"kind": data.pop("kind"), **data}
