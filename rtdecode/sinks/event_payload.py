"""Payload of an event message (``kind = 3``): one stimulation pulse and its per-channel measures.

After the 40-byte header (:mod:`rtdecode.sinks.protocol`), whose ``count`` is the number of
measured channels ``M`` (muscles), an event carries::

    event header (32 bytes) | values float32 (M, K) | channel flags u32 (M,)

The event header is little-endian and packed (``struct`` format ``"<QdfHHff"``):

======  ================  ====  ==========================================================
offset  field             type  meaning
======  ================  ====  ==========================================================
0       pulse_id          u64   pulse number (from the marker's ``pulse`` field, else a
                                running count from 0)
8       t_pulse           f64   LSL time of the pulse, s (local clock of the service)
16      intensity         f32   stimulus intensity (0 when unknown: ``intensity_unit`` 0)
20      intensity_unit    u16   0 none, 1 % of maximum stimulator output, 2 % of resting
                                motor threshold
22      n_measures        u16   K, measures per channel (4 in this version)
24      window_start_ms   f32   post-pulse window of the measures, ms after the pulse
28      window_end_ms     f32
======  ================  ====  ==========================================================

``values[m, k]`` (muscle-major) are all finite; the measures, in order, are ``p2p_uv`` (peak
to peak in the post-pulse window, µV), ``latency_ms`` (onset latency after the pulse, ms; 0
with ``NO_RESPONSE``), ``area_uv_ms`` (area of the rectified response in the window, µV·ms)
and ``pre_rms_uv`` (background RMS before the pulse, µV). A reader uses the first
``min(K, its own count)`` and ignores the rest, so later versions may append measures.

The channel flags and the header's ``flags`` use the bits of :class:`rtdecode.types.Flags`
(0–7) and of :class:`EventFlags` (8 and up); the header's flags are the OR of the channels'
plus the pulse-wide bits. The full description is in ``docs/protocol.md`` and ``docs/tms.md``.
"""

from __future__ import annotations

import enum
import logging
import math
import struct
from dataclasses import dataclass

import numpy as np

from rtdecode.errors import ProtocolError

logger = logging.getLogger(__name__)

__all__ = [
    "EVENT_FORMAT",
    "EVENT_SIZE",
    "INTENSITY_UNITS",
    "MEASURES",
    "EventData",
    "EventFlags",
    "event_frame_size",
    "check_event_fields",
    "intensity_unit_code",
    "pack_event_header",
    "parse_event_payload",
]

#: ``struct`` format of the event header (little-endian, packed).
EVENT_FORMAT = "<QdfHHff"
#: Size of the event header, bytes (32).
EVENT_SIZE = struct.calcsize(EVENT_FORMAT)
#: Names of the measures per channel, in wire order.
MEASURES = ("p2p_uv", "latency_ms", "area_uv_ms", "pre_rms_uv")
#: Intensity units by code (index): none, % of maximum stimulator output, % of resting motor threshold.
INTENSITY_UNITS = ("", "%MSO", "%RMT")

_EVENT = struct.Struct(EVENT_FORMAT)
_F32 = np.dtype("<f4")
_U32 = np.dtype("<u4")
_U16_MAX = 2**16 - 1


class EventFlags(enum.IntFlag):
    """Event-specific flag bits (8 and up; bits 0–7 are :class:`rtdecode.types.Flags`).

    Set per channel in the channel flags and OR-ed into the message flags.
    """

    PREACTIVATED = 1 << 8  #: background EMG before the pulse above the pre-activation threshold
    OUTAGE = 1 << 9  #: input samples missing inside the pulse's windows (outage, gap)
    NO_SAMPLES = 1 << 10  #: the window's samples never came (or were gone); values are 0
    NO_RESPONSE = 1 << 11  #: peak to peak below the response threshold; latency is 0


def intensity_unit_code(unit: str) -> int:
    """Wire code of an intensity unit (``""``, ``"%MSO"`` or ``"%RMT"``).

    Raises
    ------
    ProtocolError
        For any other unit.
    """
    try:
        return INTENSITY_UNITS.index(unit)
    except ValueError:
        raise ProtocolError(f"intensity unit {unit!r} is not one of {INTENSITY_UNITS}",
                            "use '%MSO', '%RMT' or '' (unknown)") from None


def event_frame_size(n_channels: int, n_measures: int) -> int:
    """Payload bytes of an event with ``n_channels`` channels and ``n_measures`` measures."""
    return EVENT_SIZE + n_channels * (4 * n_measures + 4)


@dataclass(frozen=True, eq=False)
class EventData:
    """The decoded payload of one event message.

    Attributes
    ----------
    pulse_id : int
        Pulse number.
    t_pulse : float
        LSL time of the pulse, s.
    intensity : float
        Stimulus intensity (0 when ``intensity_unit`` is ``""``).
    intensity_unit : str
        ``""``, ``"%MSO"`` or ``"%RMT"``.
    window_ms : (float, float)
        Post-pulse window of the measures, ms after the pulse.
    values : float32 (M, K)
        Measures per channel, in the order of :data:`MEASURES` (a private copy).
    channel_flags : uint32 (M,)
        Flag bits per channel.
    """

    pulse_id: int
    t_pulse: float
    intensity: float
    intensity_unit: str
    window_ms: tuple[float, float]
    values: np.ndarray
    channel_flags: np.ndarray

    def measure(self, name: str) -> np.ndarray:
        """One measure for every channel, float32 (M,), e.g. ``measure("p2p_uv")``."""
        k = MEASURES.index(name)
        if k >= self.values.shape[1]:
            raise ProtocolError(f"this event carries {self.values.shape[1]} measures, not {name!r}",
                                "update the publisher")
        return self.values[:, k]


def parse_event_payload(data: bytes, offset: int, count: int, where: str) -> EventData:
    """Read and check an event payload.

    Parameters
    ----------
    data : bytes
        The whole frame.
    offset : int
        Index of the first payload byte (after the 40-byte header).
    count : int
        Channels, from the header's ``count``.
    where : str
        Topic and sequence number, for error messages.

    Raises
    ------
    ProtocolError
        Payload shorter than its event header, ``n_measures`` 0, a length that does not
        match ``count`` and ``n_measures``, an unknown intensity unit, a non-finite pulse
        time, intensity, window or value.
    """
    fix = "check that the publisher speaks the rtdecode protocol (docs/protocol.md)"
    size = len(data) - offset
    if size < EVENT_SIZE:
        raise ProtocolError(f"event {where} has {size} payload bytes; expected at least "
                            f"{EVENT_SIZE} (the event header)", fix)
    pulse_id, t_pulse, intensity, unit, k, w0, w1 = _EVENT.unpack_from(data, offset)
    if k == 0 or size != event_frame_size(count, k):
        raise ProtocolError(f"event {where} declares {count} channels x {k} measures "
                            f"({event_frame_size(count, k)} payload bytes) but carries {size}", fix)
    if unit >= len(INTENSITY_UNITS):
        raise ProtocolError(f"event {where} has unknown intensity unit code {unit}",
                            "run publisher and subscriber from matching rtdecode versions")
    if not all(math.isfinite(v) for v in (t_pulse, intensity, w0, w1)):
        raise ProtocolError(f"event {where} has a non-finite pulse time, intensity or window", fix)
    start = offset + EVENT_SIZE
    values = np.frombuffer(data, dtype=_F32, count=count * k, offset=start).astype(np.float32)
    if not np.isfinite(values).all():
        raise ProtocolError(f"event {where} carries non-finite values; the protocol never "
                            "carries NaN/Inf", "fix the publisher")
    flags = np.frombuffer(data, dtype=_U32, count=count, offset=start + 4 * count * k)
    return EventData(int(pulse_id), float(t_pulse), float(intensity), INTENSITY_UNITS[unit],
                     (float(w0), float(w1)), values.reshape(count, k), flags.astype(np.uint32))


def pack_event_header(buf: bytearray, offset: int, pulse_id: int, t_pulse: float, intensity: float,
                      unit_code: int, n_measures: int, window_ms: tuple[float, float]) -> None:
    """Write the 32-byte event header into ``buf`` at ``offset`` (fields already checked)."""
    _EVENT.pack_into(buf, offset, pulse_id, t_pulse, intensity, unit_code, n_measures,
                     window_ms[0], window_ms[1])


def check_event_fields(pulse_id: int, t_pulse: float, intensity: float, unit: str,
                       n_measures: int) -> int:
    """Validate the event header fields; returns the intensity unit's code.

    Raises
    ------
    ProtocolError
        A negative or too large pulse id, a non-finite pulse time or intensity, an unknown
        unit or a measure count outside 1..65535.
    """
    if isinstance(pulse_id, bool) or not isinstance(pulse_id, (int, np.integer)) \
            or not 0 <= int(pulse_id) < 2**64:
        raise ProtocolError(f"pulse_id {pulse_id!r} is not an int in 0..2**64-1",
                            "number pulses from 0")
    if not (math.isfinite(t_pulse) and math.isfinite(intensity)):
        raise ProtocolError(f"pulse time {t_pulse!r} / intensity {intensity!r} must be finite",
                            "pass the LSL time of the pulse and 0 for an unknown intensity")
    if not 1 <= n_measures <= _U16_MAX:
        raise ProtocolError(f"n_measures {n_measures} outside 1..{_U16_MAX}", "pass 4 measures")
    return intensity_unit_code(unit)
