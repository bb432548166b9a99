"""Marker streams → per-sample class labels and trial ids.

A recording's markers (``Recording.meta["markers"]``: times in s from the first sample and
their text) describe *events*: a start marker and either an end marker or a fixed duration.
:class:`MarkerLabels` says how to read them:

``start = "{}s"``, ``end = "{}e"``
    Templates: ``{}`` stands for the event's label, so the markers ``0s`` … ``0e`` make one
    event with label ``0`` (start/end pairs).
``duration_s = 1.5`` (instead of ``end``)
    Onset plus a fixed duration.
``classes = {"0" = "snap", "1" = "squeeze"}``
    Event label → class name (several labels may share a class; default: each label is its
    own class, in sorted order).
``rest = "rest"``
    Class of the samples between events (class 0). ``rest = ""`` leaves them out.
``offset_s = 0.6``, ``guard_s = 0.3``
    Shift every event after its markers (a cue's reaction delay), and leave out the rest
    samples closer than ``guard_s`` to an event (the transitions).

Samples inside an event get its class; samples outside any event get ``rest`` (or are left
out). Trials for the protocols can come from the events: each event together with the rest
before it, ``events_per_trial`` events per trial (:func:`event_trials`).

Nothing here imports torch.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rtdecode.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["Event", "EventLabels", "MarkerLabels", "class_map", "event_trials", "find_events",
           "guess_marker_labels", "label_samples"]

#: Start / end suffix pairs :func:`guess_marker_labels` recognises (in this order).
_PAIRS = (("s", "e"), ("_start", "_end"), ("_start", "_stop"), ("start", "end"), ("_on", "_off"),
          ("_begin", "_end"), ("-start", "-end"))


class MarkerLabels(BaseModel):
    """How to read class labels from a recording's markers (see the module notes)."""

    model_config = ConfigDict(extra="forbid")

    stream: str | None = Field(None, description="marker stream name (default: every string stream)")
    start: str = Field("{}", description="template of an event's start marker; {} is the event label")
    end: str | None = Field(None, description="template of its end marker (start/end pairs)")
    duration_s: float | None = Field(None, gt=0, description="or: a fixed duration after each start, s")
    classes: dict[str, str] | None = Field(None, description="event label → class name (default: each "
                                           "label its own class)")
    rest: str = Field("rest", description="class of the samples between events (class 0); '' leaves "
                      "them out")
    offset_s: float = Field(0.0, description="shift of every event after its markers, s (a cue's "
                            "reaction delay: the movement starts this long after the start marker)")
    guard_s: float = Field(0.0, ge=0, description="rest samples closer than this to an event are left out "
                           "(transitions), s")

    @model_validator(mode="after")
    def _one_end_rule(self) -> MarkerLabels:
        if (self.end is None) == (self.duration_s is None):
            raise ValueError("give exactly one of `end` (a template such as '{}e') or `duration_s`")
        for name, tpl in (("start", self.start), ("end", self.end)):
            if tpl is not None and tpl.count("{}") != 1:
                raise ValueError(f"`{name}` must hold `{{}}` once (where the event label goes), got {tpl!r}")
        if self.end == self.start:
            raise ValueError("`start` and `end` are the same template; give the end marker's own template")
        return self


def _template(tpl: str) -> re.Pattern[str]:
    head, tail = tpl.split("{}")
    return re.compile(f"^{re.escape(head)}(?P<label>.+?){re.escape(tail)}$")


@dataclass(frozen=True)
class Event:
    """One event: start and end (s from the first sample) and its label."""

    start: float
    end: float
    label: str


@dataclass
class EventLabels:
    """Per-sample labels read from markers.

    Attributes
    ----------
    y : int64 (n_samples,)
        Class of each sample (0 = rest when there is a rest class).
    keep : bool (n_samples,)
        False for samples left out (between events without a rest class).
    events : float64 (m, 2)
        Start and end of every labelled event, s from the first sample.
    event_class : int64 (m,)
    """

    y: np.ndarray
    keep: np.ndarray
    events: np.ndarray
    event_class: np.ndarray


def find_events(markers: tuple[np.ndarray, list[str]], spec: MarkerLabels) -> list[Event]:
    """Every event the markers describe, in time order (unmatched starts are left out, with a warning).

    Parameters
    ----------
    markers : (float64 (m,), list of str)
        Marker times, s, and texts.
    spec : MarkerLabels

    Raises
    ------
    DataError
        When no marker matches the templates (the message lists the markers seen).
    """
    times, texts = np.asarray(markers[0], dtype=np.float64), list(markers[1])
    start_re = _template(spec.start)
    end_re = _template(spec.end) if spec.end is not None else None
    out: list[Event] = []
    open_: dict[str, float] = {}
    for t, text in zip(times, texts, strict=True):
        m_end = end_re.match(text) if end_re is not None else None
        if m_end is not None and m_end["label"] in open_:
            out.append(Event(open_.pop(m_end["label"]), float(t) + spec.offset_s, m_end["label"]))
            continue
        m = start_re.match(text)
        if m is None:
            continue
        start = float(t) + spec.offset_s
        if end_re is None:
            out.append(Event(start, start + float(spec.duration_s or 0.0), m["label"]))
        else:
            if m["label"] in open_:
                logger.warning("marker %r at %.3f s restarts an event without an end; the earlier start "
                               "(%.3f s) is dropped", text, t, open_[m["label"]])
            open_[m["label"]] = start
    if open_:
        logger.warning("%d event start(s) without an end marker left out: %s", len(open_),
                       ", ".join(f"{k} @ {v:.2f} s" for k, v in open_.items()))
    if not out:
        seen = ", ".join(f"{k!r} ×{v}" for k, v in Counter(texts).most_common(8)) or "none"
        raise DataError(f"no marker matches start={spec.start!r}"
                        + (f" / end={spec.end!r}" if spec.end else "") + f"; markers seen: {seen}",
                        "set data.markers.start / end to templates of these markers ('{}' = the label), "
                        "or run `rtdecode inspect` on the recording")
    return sorted(out, key=lambda e: (e.start, e.end))


def class_map(labels: list[str], spec: MarkerLabels, known: list[str] | None = None
              ) -> tuple[list[str], dict[str, int]]:
    """Class names and the event label → class index map.

    Parameters
    ----------
    labels : list of str
        Event labels seen (in any recording of the set).
    spec : MarkerLabels
    known : list of str, optional
        Class names fixed elsewhere (a trained model's outputs): their order is kept and
        labels of other classes are left out.

    Returns
    -------
    names : list of str
        The rest class first (when there is one), then the classes in ``spec.classes`` order
        (or the sorted labels).
    index : dict of str → int
    """
    mapping = spec.classes or {lab: lab for lab in sorted(set(labels))}
    if known is not None:
        names = list(known)
    else:
        names = [spec.rest] if spec.rest else []
        names += [c for c in dict.fromkeys(mapping.values()) if c not in names]
    index = {lab: names.index(cls) for lab, cls in mapping.items() if cls in names}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        logger.warning("event labels %s have no class; their events are left out", unknown)
    return names, index


def label_samples(t: np.ndarray, events: list[Event], index: dict[str, int],
                  spec: MarkerLabels) -> EventLabels:
    """Class of every sample: an event's class inside it, the rest class (or left out) between.

    Parameters
    ----------
    t : float64 (n_samples,)
        Sample times, s from the first sample (the markers' clock).
    events : list of Event
    index : dict of str → int
        Event label → class (:func:`class_map`).
    spec : MarkerLabels
    """
    y = np.zeros(t.shape[0], dtype=np.int64)
    keep = np.full(t.shape[0], bool(spec.rest))
    kept = [e for e in events if e.label in index]
    for e in kept:
        keep[(t >= e.start - spec.guard_s) & (t < e.end + spec.guard_s)] = False
    for e in kept:
        inside = (t >= e.start) & (t < e.end)
        y[inside] = index[e.label]
        keep[inside] = True
    return EventLabels(y=y, keep=keep, events=np.array([(e.start, e.end) for e in kept]).reshape(-1, 2),
                       event_class=np.array([index[e.label] for e in kept], dtype=np.int64))


def event_trials(t: np.ndarray, events: np.ndarray, events_per_trial: int = 1) -> np.ndarray:
    """Trial id of every sample: each event with the rest before it, ``events_per_trial`` per trial.

    Parameters
    ----------
    t : float64 (n_samples,)
    events : float64 (m, 2)
        Event start and end times, in time order.
    events_per_trial : int

    Returns
    -------
    int64 (n_samples,)
        1-based trial ids; samples after the last event join the last trial.
    """
    if events.shape[0] == 0:
        raise DataError("no events to cut trials from", "check data.markers, or use data.trials = 'blocks'")
    k = np.searchsorted(events[:, 1], t, side="right")  # events ended at or before each sample
    k = np.minimum(k, events.shape[0] - 1)
    return (k // max(1, int(events_per_trial)) + 1).astype(np.int64)


def guess_marker_labels(times: np.ndarray, texts: list[str]) -> MarkerLabels | None:
    """A starter :class:`MarkerLabels` for these marker texts (``None`` when there are none).

    Start/end pairs are recognised from common suffixes (``s``/``e``, ``_start``/``_end``,
    ``_on``/``_off`` …); otherwise every marker is an onset with a duration of half the
    median gap between markers.
    """
    distinct = sorted(set(texts))
    if not distinct:
        return None
    for a, b in _PAIRS:
        starts = {x[: -len(a)] for x in distinct if x.endswith(a) and len(x) > len(a)}
        ends = {x[: -len(b)] for x in distinct if x.endswith(b) and len(x) > len(b)}
        if starts and starts == ends and len(starts) * 2 == len(distinct):
            return MarkerLabels(start="{}" + a, end="{}" + b)
    gaps = np.diff(np.sort(np.asarray(times, dtype=np.float64)))
    half = 0.5 * float(np.median(gaps)) if gaps.size else 1.0
    return MarkerLabels(start="{}", duration_s=round(half, 3) if half > 0 else 1.0)
