"""What the monitor page shows, gathered from the daemon's frames (and the demo's ground truth).

:class:`Hub` is fed every frame a subscriber receives (:meth:`Hub.feed`, from the receiving
thread) and, on the server's schedule, hands the page what is new (:meth:`Hub.update`): per
topic the points since the last update (thinned to at most ``max_points`` per update, flags
OR-ed over the points left out), message rate and sample age, the latest status, and events
of any other kind. Frames are read with :func:`rtdecode.sinks.peek.peek`, so kinds this
version does not know are shown as raw events, never dropped or fatal.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from rtdecode.sinks.event_payload import MEASURES, parse_event_payload
from rtdecode.sinks.peek import peek
from rtdecode.sinks.protocol import KIND_ESTIMATE, KIND_EVENT, KIND_STATUS, flag_names

logger = logging.getLogger(__name__)

#: Ages kept per topic for the percentiles shown.
AGE_WINDOW = 512
#: Events kept for a page that connects later.
EVENTS_KEPT = 50
#: Event flag bit of a model's prediction (issue 15's EventFlags.PREDICTION); drawn apart.
PREDICTION_FLAG = 1 << 12



class _Topic:
    """Points of one estimate topic since the last update, plus running counters."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.y: list[np.ndarray] = []
        self.flags: list[int] = []
        self.ages: deque[float] = deque(maxlen=AGE_WINDOW)
        self.received = 0
        self.lost = 0
        self.last_seq = -1
        self.flags_seen = 0
        self.last: dict[str, Any] = {}

    def add(self, seq: int, flags: int, t_source: float, values: np.ndarray, age: float) -> None:
        if self.last_seq >= 0 and seq > self.last_seq + 1:
            self.lost += seq - self.last_seq - 1
        self.last_seq = seq
        self.received += 1
        self.flags_seen |= flags
        self.t.append(t_source)
        self.y.append(values)
        self.flags.append(flags)
        self.ages.append(age)
        self.last = {"seq": seq, "flags": flags, "flag_names": flag_names(flags),
                     "values": [round(float(v), 5) for v in values]}

    def take(self, max_points: int) -> dict[str, Any]:
        t, y, f = np.asarray(self.t), self.y, np.asarray(self.flags, np.uint32)
        self.t, self.y, self.flags = [], [], []
        if t.size > max_points:  # keep evenly spaced points; a kept point carries its stretch's flags
            keep = np.linspace(0, t.size - 1, max_points).astype(np.int64)
            f = np.bitwise_or.reduceat(f, np.r_[0, keep[1:]])
            t, y = t[keep], [y[i] for i in keep]
        a = np.asarray(self.ages) * 1e3
        return {"t": t.round(6).tolist(), "y": np.round(np.vstack(y), 5).tolist() if y else [],
                "flags": f.tolist(), "received": self.received, "lost": self.lost,
                "flags_seen": flag_names(self.flags_seen), "last": self.last,
                "age_ms": ({"p50": round(float(np.percentile(a, 50)), 3),
                            "p99": round(float(np.percentile(a, 99)), 3),
                            "last": round(float(a[-1]), 3)} if a.size else None)}


class Hub:
    """Thread-safe store between the receiving threads and the page.

    Parameters
    ----------
    clock : callable
        The LSL local clock (sample age = receive time − ``t_source``), s.
    max_points : int
        Most points per topic in one update.
    """

    def __init__(self, clock: Callable[[], float], max_points: int = 200) -> None:
        self.clock = clock
        self.max_points = max_points
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        self._status: dict[str, Any] | None = None
        self._status_new = False
        self._events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        self._new_events: list[dict[str, Any]] = []
        self._truth_t: list[np.ndarray] = []
        self._truth_y: list[np.ndarray] = []
        self.truth_names: list[str] = []
        self.malformed = 0

    # -- feeding (receiving threads) -------------------------------------
    def feed(self, frame: bytes) -> None:
        """One frame from the daemon (any kind)."""
        now = self.clock()
        h = peek(frame)
        if h is None:
            self.malformed += 1
            return
        body = frame[h.payload_start:]
        with self._lock:
            if h.kind == KIND_ESTIMATE and len(body) == 4 * h.count:
                tp = self._topics.setdefault(h.topic, _Topic())
                tp.add(h.seq, h.flags, h.t_source, np.frombuffer(body, "<f4"), now - h.t_source)
            elif h.kind == KIND_STATUS:
                try:
                    self._status = json.loads(body)
                    self._status_new = True
                except ValueError:
                    self.malformed += 1
            else:
                ev = _event(h, frame, body)
                self._events.append(ev)
                self._new_events.append(ev)

    def feed_truth(self, t: np.ndarray, y: np.ndarray) -> None:
        """Ground-truth samples (the demo's kinematics), LSL times (s) and values (n, k)."""
        with self._lock:
            self._truth_t.append(np.asarray(t, np.float64))
            self._truth_y.append(np.asarray(y, np.float64))

    # -- reading (server) -------------------------------------------------
    def update(self) -> dict[str, Any]:
        """What is new since the last call (traces, status when new, events, truth)."""
        with self._lock:
            traces = {name: tp.take(self.max_points) for name, tp in self._topics.items()}
            status = self._status if self._status_new else None
            self._status_new = False
            events, self._new_events = self._new_events, []
            tt, ty = self._truth_t, self._truth_y
            self._truth_t, self._truth_y = [], []
        truth = None
        if tt:
            t, y = np.concatenate(tt), np.concatenate(ty)
            if t.size > self.max_points:
                keep = np.linspace(0, t.size - 1, self.max_points).astype(np.int64)
                t, y = t[keep], y[keep]
            truth = {"t": t.round(6).tolist(), "y": np.round(y, 5).tolist(), "names": self.truth_names}
        return {"type": "update", "now": round(self.clock(), 6), "traces": traces, "status": status,
                "events": events, "truth": truth, "malformed": self.malformed}

    def hello(self) -> dict[str, Any]:
        """The first message to a page: the latest status and the events kept so far."""
        with self._lock:
            return {"type": "hello", "status": self._status, "events": list(self._events),
                    "truth_names": self.truth_names}


def _event(h: Any, frame: bytes, body: bytes) -> dict[str, Any]:
    """A frame of another kind as the page shows it (decoded when this version knows it)."""
    ev: dict[str, Any] = {"topic": h.topic, "kind": h.kind, "seq": h.seq, "flags": h.flags,
                          "flag_names": flag_names(h.flags), "t_source": _finite(h.t_source),
                          "t_publish": _finite(h.t_publish), "size": len(body)}
    if h.kind == KIND_EVENT:
        try:
            e = parse_event_payload(frame, h.payload_start, h.count, f"topic {h.topic!r}")
        except Exception as exc:  # noqa: BLE001 - shown raw, never fatal
            ev["error"] = str(exc)
        else:
            ev.update(pulse_id=e.pulse_id, t_pulse=_finite(e.t_pulse), intensity=e.intensity,
                      intensity_unit=e.intensity_unit, window_ms=list(e.window_ms),
                      measures=[MEASURES[k] if k < len(MEASURES) else f"m{k}"
                                for k in range(e.values.shape[1])],
                      values=np.round(e.values, 4).tolist(),
                      channel_flags=np.asarray(e.channel_flags).tolist(),
                      prediction=bool(h.flags & PREDICTION_FLAG))
    return ev


def _finite(x: float) -> float | None:
    """JSON-safe time: None for NaN / inf."""
    return float(x) if math.isfinite(x) else None
