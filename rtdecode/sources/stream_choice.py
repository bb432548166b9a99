"""Which of the LSL outlets that match the configured name / type / source_id to open.

Several outlets can answer the same query (two amplifiers named "EMG", a replay left running
beside the rig). At start-up the inlet gathers the matching outlets for a short window, keeps
those whose channel count, sample format and rate fit the config and every model
(:func:`misfit`), warns when more than one fits, and picks one deterministically
(:func:`choose`: the lowest ``(source_id, hostname, created_at)``; an explicit
``source.source_id`` is part of the query, so it always wins). The rejected outlets are
logged with the reason, and named in the error when none fits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from rtdecode.lsl import NUMERIC_DTYPES, pylsl

logger = logging.getLogger(__name__)

FORMAT_NAMES = {
    pylsl.cf_float32: "float32", pylsl.cf_double64: "double64", pylsl.cf_string: "string",
    pylsl.cf_int32: "int32", pylsl.cf_int16: "int16", pylsl.cf_int8: "int8", pylsl.cf_int64: "int64",
}


@dataclass(frozen=True)
class Layout:
    """What the stream must look like for one consumer (the config, or one model).

    ``channels`` / ``rate_hz`` None means "any"; ``what`` names the consumer in messages.
    """

    channels: int | None
    rate_hz: float | None
    what: str
    channels_field: str = ""  #: config field to name in messages
    rate_field: str = ""


def describe(info: pylsl.StreamInfo) -> str:
    """One line naming an outlet: name, source_id, host, layout."""
    return (f"{info.name()!r} (source_id {info.source_id()!r}, host {info.hostname()!r}, "
            f"{info.channel_count()} ch @ {info.nominal_srate():g} Hz, "
            f"{FORMAT_NAMES.get(info.channel_format(), '?')})")


def misfit(info: pylsl.StreamInfo, layouts: Sequence[Layout], rate_tolerance: float) -> str | None:
    """Why ``info`` cannot feed these consumers, or None when it fits."""
    if info.channel_format() not in NUMERIC_DTYPES:
        return (f"channel format {FORMAT_NAMES.get(info.channel_format(), '?')}: rtdecode decodes "
                "numeric streams only")
    rate = info.nominal_srate()
    if rate <= 0:
        return "irregular rate (nominal 0 Hz): decoding needs a regularly sampled stream"
    for lay in layouts:
        if lay.channels is not None and info.channel_count() != lay.channels:
            return (f"has {info.channel_count()} channels, {lay.what} expects {lay.channels}"
                    + (f" ({lay.channels_field})" if lay.channels_field else ""))
        if lay.rate_hz is not None and abs(rate - lay.rate_hz) > rate_tolerance * lay.rate_hz:
            return (f"runs at {rate:g} Hz, {lay.what} expects {lay.rate_hz:g} Hz"
                    + (f" ({lay.rate_field})" if lay.rate_field else ""))
    return None


def _order(info: pylsl.StreamInfo) -> tuple[str, str, float]:
    return (info.source_id(), info.hostname(), info.created_at())


def choose(found: Sequence[pylsl.StreamInfo], layouts: Sequence[Layout], rate_tolerance: float
           ) -> tuple[pylsl.StreamInfo | None, list[tuple[pylsl.StreamInfo, str]]]:
    """Pick the outlet to open among ``found``.

    ``layouts[0]`` is the config's (a requirement), the others the models' (a preference:
    when no outlet fits them all, an outlet that fits the config is chosen and the model
    check that follows names the model that does not fit).

    Returns
    -------
    chosen : StreamInfo or None
        The first fitting outlet in ``(source_id, hostname, created_at)`` order (None: none fits).
    rejected : list of (StreamInfo, reason)
    """
    chosen, rejected = _first_fit(found, layouts, rate_tolerance)
    if chosen is None and len(layouts) > 1:
        chosen, _ = _first_fit(found, layouts[:1], rate_tolerance)
    return chosen, rejected


def _first_fit(found: Sequence[pylsl.StreamInfo], layouts: Sequence[Layout], rate_tolerance: float
               ) -> tuple[pylsl.StreamInfo | None, list[tuple[pylsl.StreamInfo, str]]]:
    fitting, rejected = [], []
    for info in found:
        why = misfit(info, layouts, rate_tolerance)
        if why is None:
            fitting.append(info)
        else:
            rejected.append((info, why))
    fitting.sort(key=_order)
    return (fitting[0] if fitting else None), rejected


def report(chosen: pylsl.StreamInfo, found: Sequence[pylsl.StreamInfo],
           rejected: Sequence[tuple[pylsl.StreamInfo, str]], pred: str) -> None:
    """Log the choice: a warning when several outlets fit, each rejected one with its reason."""
    for info, why in rejected:
        logger.warning("not using LSL outlet %s: %s", describe(info), why)
    others = [i for i in found if i is not chosen and all(i is not r for r, _ in rejected)]
    if others:
        logger.warning("%d LSL outlets match %s and fit; using %s (lowest source_id, host, creation "
                       "time); also fitting: %s. Set source.source_id to choose one explicitly",
                       len(others) + 1, pred, describe(chosen), "; ".join(describe(i) for i in others))
