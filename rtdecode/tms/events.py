"""Pulse events: markers from an LSL marker stream, or edges of a trigger channel, on the LSL clock.

Marker payload
--------------
A marker is one string (or number) per pulse. A plain label (``"TMS"``, ``"1"``) is a pulse
without parameters. A JSON object carries them; every field is optional and unknown fields
are ignored::

    {"pulse": 17,                      # pulse number (int >= 0; default: a running count)
     "intensity": 120, "unit": "%RMT", # or "%MSO"
     "coil": {"position_mm": [x, y, z], "normal": [nx, ny, nz], "direction": [dx, dy, dz]}}

A field with a wrong type is ignored (logged once, counted) — the pulse still counts.

Clock alignment: the marker inlet uses liblsl's clock synchronisation (``proc_clocksync``),
so a marker's timestamp is on the service's local LSL clock, like the EMG samples; the pulse
is at the sample nearest in time to the marker (the earlier one on a tie).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtdecode.errors import SourceError
from rtdecode.lsl import pylsl
from rtdecode.sinks.event_payload import INTENSITY_UNITS
from rtdecode.sources.lsl_inlet import stream_predicate
from rtdecode.tms.config import MarkerStreamConfig, TriggerConfig

logger = logging.getLogger(__name__)

__all__ = ["CoilPose", "MarkerInlet", "MarkerParser", "Pulse", "TriggerDetector"]


@dataclass(frozen=True)
class CoilPose:
    """Coil pose sent by a navigator (any frame the lab uses; millimetres and unit vectors).

    Attributes
    ----------
    position_mm : (3,) float
        Coil centre.
    normal : (3,) float or None
        Unit vector normal to the coil (pointing away from the head).
    direction : (3,) float or None
        Unit vector of the induced current under the coil centre (the handle axis).
    """

    position_mm: tuple[float, float, float]
    normal: tuple[float, float, float] | None = None
    direction: tuple[float, float, float] | None = None


@dataclass
class Pulse:
    """One stimulation pulse.

    Attributes
    ----------
    pulse_id : int
        Pulse number.
    t : float
        LSL time of the pulse (local clock), s.
    intensity : float
        Intensity (0 when unknown).
    unit : str
        ``""``, ``"%MSO"`` or ``"%RMT"``.
    coil : CoilPose or None
        Coil pose, when the marker carried one.
    label : str
        The marker as received.
    t_received : float
        Local LSL clock when the marker was received, s.
    """

    pulse_id: int
    t: float
    intensity: float = 0.0
    unit: str = ""
    coil: CoilPose | None = None
    label: str = ""
    t_received: float = math.nan


def _vector(value: Any) -> tuple[float, float, float] | None:
    if (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
        return (float(value[0]), float(value[1]), float(value[2]))
    return None


class MarkerParser:
    """Turns markers into pulses, numbering those without a ``pulse`` field.

    Parameters
    ----------
    accept : list of str, optional
        Plain labels that are pulses (default: every marker).

    Attributes
    ----------
    ignored : int
        Plain markers not in ``accept``.
    field_errors : int
        Markers with a field of the wrong type (the pulse was kept, the field ignored).
    """

    def __init__(self, accept: list[str] | None = None) -> None:
        self.accept = None if accept is None else {str(a) for a in accept}
        self.next_id = 0
        self.ignored = 0
        self.field_errors = 0
        self._logged: set[str] = set()

    def parse(self, value: Any, t: float, t_received: float = math.nan) -> Pulse | None:
        """One marker → a pulse, or None for a plain label that is not accepted.

        Parameters
        ----------
        value : str or number
            The marker's first channel.
        t : float
            Its LSL time (local clock), s.
        t_received : float
            Local clock when it was received, s.
        """
        label = _label(value)
        obj = _json_object(label)
        if obj is None:
            if self.accept is not None and label not in self.accept:
                self.ignored += 1
                return None
            return self._pulse(Pulse(self.next_id, t, label=label, t_received=t_received))
        pulse = Pulse(self.next_id, t, label=label, t_received=t_received)
        pid = obj.get("pulse")
        if pid is not None:
            if isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < 2**64:
                pulse.pulse_id = pid
            else:
                self._field_error("pulse", pid)
        self._intensity(obj, pulse)
        coil = obj.get("coil")
        if coil is not None:
            pos = _vector(coil.get("position_mm")) if isinstance(coil, dict) else None
            if pos is None:
                self._field_error("coil", coil)
            else:
                pulse.coil = CoilPose(pos, _vector(coil.get("normal")), _vector(coil.get("direction")))
        return self._pulse(pulse)

    def _intensity(self, obj: dict[str, Any], pulse: Pulse) -> None:
        value, unit = obj.get("intensity"), obj.get("unit", "")
        if value is None:
            return
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0):
            self._field_error("intensity", value)
            return
        if unit not in INTENSITY_UNITS:
            self._field_error("unit", unit)
            unit = ""
        pulse.intensity, pulse.unit = float(value), str(unit)

    def _pulse(self, pulse: Pulse) -> Pulse:
        self.next_id = max(self.next_id, pulse.pulse_id + 1)
        return pulse

    def _field_error(self, name: str, value: Any) -> None:
        self.field_errors += 1
        if name not in self._logged:
            self._logged.add(name)
            logger.warning("marker field %r has an unusable value %r; ignored (the pulse counts; "
                           "further errors in this field are only counted; see docs/tms.md)",
                           name, value)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_object(label: str) -> dict[str, Any] | None:
    if not label.lstrip().startswith("{"):
        return None
    try:
        obj = json.loads(label)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


class TriggerDetector:
    """Threshold crossings of one channel, with a refractory period; chunk-invariant.

    Parameters
    ----------
    cfg : TriggerConfig
        Threshold, edge and refractory period.
    channel : int
        Index of the trigger channel in the stream.
    """

    def __init__(self, cfg: TriggerConfig, channel: int) -> None:
        self.threshold = float(cfg.threshold)
        self.sign = 1.0 if cfg.edge == "rising" else -1.0
        self.refractory_s = cfg.refractory_ms / 1e3
        self.channel = int(channel)
        self._above = True  # no edge on the very first sample
        self._last = -math.inf

    def step(self, x: np.ndarray, t: np.ndarray) -> list[float]:
        """Pulse times (LSL, s) in a chunk of samples ``x`` (n, C) with times ``t`` (n,)."""
        if x.shape[0] == 0:
            return []
        above = self.sign * (x[:, self.channel] - self.threshold) >= 0
        prev = np.concatenate(([self._above], above[:-1]))
        self._above = bool(above[-1])
        times = []
        for i in np.flatnonzero(above & ~prev):
            ti = float(t[i])
            if ti - self._last >= self.refractory_s:
                times.append(ti)
                self._last = ti
        return times


class MarkerInlet:
    """An LSL marker inlet pulled without blocking, its timestamps on the local clock.

    Parameters
    ----------
    cfg : MarkerStreamConfig
        Which stream.

    Notes
    -----
    The constructor does no I/O; :meth:`open` resolves and connects (liblsl's
    ``recover=True`` re-connects to an outlet that comes back with the same source_id),
    :meth:`close` is idempotent.
    """

    def __init__(self, cfg: MarkerStreamConfig) -> None:
        self.cfg = cfg
        self.inlet: pylsl.StreamInlet | None = None
        self.name = ""
        self.received = 0

    def open(self) -> MarkerInlet:
        """Resolve the marker stream (up to ``resolve_timeout_s``) and open the inlet."""
        pred = stream_predicate(self.cfg, "tms.markers")
        resolver = pylsl.ContinuousResolver(pred=pred)
        deadline = time.monotonic() + self.cfg.resolve_timeout_s
        found: list[pylsl.StreamInfo] = []
        while not found and time.monotonic() < deadline:
            time.sleep(0.05)
            found = resolver.results()
        if not found:
            raise SourceError(f"no LSL marker stream matching {pred} within "
                              f"{self.cfg.resolve_timeout_s:g} s (tms.markers)",
                              "start the stimulator's / navigator's marker outlet first, or fix "
                              "tms.markers.name / type / source_id")
        info = found[0]
        if len(found) > 1:
            logger.warning("%d marker streams match %s; using source_id %r", len(found), pred,
                           info.source_id())
        self.inlet = pylsl.StreamInlet(info, max_buflen=60, recover=True,
                                       processing_flags=pylsl.proc_clocksync)
        self.inlet.open_stream(timeout=self.cfg.resolve_timeout_s)
        try:  # prime the clock offset, so the first marker is already on the local clock
            self.inlet.time_correction(timeout=self.cfg.resolve_timeout_s)
        except pylsl.util.TimeoutError:
            logger.warning("no clock offset from marker stream %r yet", info.name())
        self.name = info.name()
        logger.info("marker stream %r open (%d ch, %s)", self.name, info.channel_count(),
                    "string" if info.channel_format() == pylsl.cf_string else "numeric")
        return self

    def pull(self) -> list[tuple[Any, float]]:
        """Markers received since the last call: ``(value of channel 0, LSL time)``; never blocks."""
        if self.inlet is None:
            return []
        values, stamps = self.inlet.pull_chunk(timeout=0.0)
        self.received += len(stamps)
        return [(v[0], float(ts)) for v, ts in zip(values, stamps, strict=True)]

    def close(self) -> None:
        """Close the inlet (idempotent)."""
        inlet, self.inlet = self.inlet, None
        if inlet is not None:
            inlet.close_stream()
