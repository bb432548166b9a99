"""The one registry of preprocessing stage kinds: each kind's spec model and stage class.

A new stage is one line in :data:`STAGES` (plus its spec in :mod:`rtdecode.dsp.specs` and its
class); chains are parsed here (:func:`parse_chain`, with errors that name the stage index and
the field) and built in :mod:`rtdecode.dsp.chain`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from rtdecode.dsp.base import Stage
from rtdecode.dsp.channels import ClipStage, GridStage, ScaleStage, SelectStage, SqrtStage, StandardizeStage
from rtdecode.dsp.envelope import RectifyStage, RmsStage, SmoothStage
from rtdecode.dsp.filters import ButterStage
from rtdecode.dsp.reference import CarStage
from rtdecode.dsp.resample import BinStage, DecimateStage
from rtdecode.dsp.specs import (
    BinSpec,
    ButterSpec,
    CarSpec,
    ClipSpec,
    CrossingsSbpSpec,
    CrossingsSpec,
    DecimateSpec,
    GridSpec,
    RectifySpec,
    RmsSpec,
    SbpSpec,
    ScaleSpec,
    SelectSpec,
    SmoothSpec,
    SpecBase,
    SqrtSpec,
    StandardizeSpec,
    TdSpec,
)
from rtdecode.dsp.spikeband import CrossingsSbpStage, CrossingsStage, SbpStage
from rtdecode.dsp.td import TdStage
from rtdecode.errors import ConfigError

__all__ = ["STAGES", "STAGE_TYPES", "StageSpec", "parse_chain", "parse_stage"]


def _register(*pairs: tuple[type[SpecBase], type[Stage]]) -> dict[str, tuple[type[SpecBase], type[Stage]]]:
    return {spec.model_fields["kind"].default: (spec, stage) for spec, stage in pairs}


#: kind → (spec model, stage class): the one list of stage kinds.
STAGES = _register(
    (ScaleSpec, ScaleStage),
    (ButterSpec, ButterStage),
    (RectifySpec, RectifyStage),
    (RmsSpec, RmsStage),
    (SmoothSpec, SmoothStage),
    (DecimateSpec, DecimateStage),
    (BinSpec, BinStage),
    (StandardizeSpec, StandardizeStage),
    (SelectSpec, SelectStage),
    (GridSpec, GridStage),
    (ClipSpec, ClipStage),
    (CarSpec, CarStage),
    (CrossingsSpec, CrossingsStage),
    (SbpSpec, SbpStage),
    (CrossingsSbpSpec, CrossingsSbpStage),
    (TdSpec, TdStage),
    (SqrtSpec, SqrtStage),
)
#: kind → stage class, called as ``cls(spec, rate_hz, n_in)``
STAGE_TYPES: dict[str, Callable[[Any, float, int], Stage]] = {k: stage for k, (_, stage) in STAGES.items()}
_KINDS: dict[str, type[SpecBase]] = {k: spec for k, (spec, _) in STAGES.items()}

if TYPE_CHECKING:
    StageSpec = SpecBase
else:  # pydantic picks the spec model from the ``kind`` field
    StageSpec = Annotated[Union[tuple(_KINDS.values())], Field(discriminator="kind")]  # noqa: UP007
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
    if isinstance(spec, SpecBase):
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


