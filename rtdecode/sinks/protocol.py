"""Wire protocol of the rtdecode output stream (version 1).

Every message is **one** ZeroMQ frame (so a subscriber may use ``ZMQ_CONFLATE``)::

    topic (UTF-8, 1..63 bytes, no NUL) | 0x00 | header (40 bytes) | payload

The header is little-endian and packed (``struct`` format ``"<4sHHIIQdd"``):

======  =========  ====  =====================================================
offset  field      type  meaning
======  =========  ====  =====================================================
0       magic      4s    ``b"RTDC"``
4       version    u16   ``1``
6       kind       u16   ``1`` = estimate, ``2`` = status, ``3`` = event
8       flags      u32   bits of :class:`rtdecode.types.Flags` (events: also
                         :class:`~rtdecode.sinks.event_payload.EventFlags`, bits 8+)
12      count      u32   estimate: number of float32 values; status: payload bytes;
                         event: number of measured channels
16      seq        u64   per topic, from 0, +1 per message
24      t_source   f64   LSL time (s) of the newest input sample the value depends on
32      t_publish  f64   LSL ``local_clock()`` (s) when the message was published
======  =========  ====  =====================================================

Payload: an estimate carries ``count`` little-endian float32 values, all finite; a
status message carries a UTF-8 JSON object of ``count`` bytes; an event (one stimulation
pulse and its measures per channel) carries the layout of
:mod:`rtdecode.sinks.event_payload`. A reader of an older version counts a kind it does not
know as malformed and skips it.

The full description, with a C struct, lives in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from rtdecode.errors import ProtocolError
from rtdecode.sinks.event_payload import (
    EventData,
    EventFlags,
    check_event_fields,
    event_frame_size,
    pack_event_header,
    parse_event_payload,
)
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

__all__ = [
    "MAGIC",
    "VERSION",
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "KIND_ESTIMATE",
    "KIND_STATUS",
    "KIND_EVENT",
    "STATUS_TOPIC",
    "MAX_TOPIC_BYTES",
    "Message",
    "EstimateEncoder",
    "EventEncoder",
    "decode",
    "encode_estimate",
    "encode_status",
    "encode_topic",
    "flag_names",
]

#: First four bytes of every header.
MAGIC = b"RTDC"
#: Protocol version written and accepted by this module.
VERSION = 1
#: ``struct`` format of the header (little-endian, packed).
HEADER_FORMAT = "<4sHHIIQdd"
#: Size of the header, bytes (40).
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)
#: ``kind`` of a message carrying float32 estimate values.
KIND_ESTIMATE = 1
#: ``kind`` of a message carrying a UTF-8 JSON status object.
KIND_STATUS = 2
#: ``kind`` of a message carrying one pulse and its measures per channel.
KIND_EVENT = 3
#: Topic of status / heartbeat messages by convention.
STATUS_TOPIC = "_status"
#: Longest topic, in UTF-8 bytes (the NUL separator is not counted).
MAX_TOPIC_BYTES = 63

_HEADER = struct.Struct(HEADER_FORMAT)
_KINDS = (KIND_ESTIMATE, KIND_STATUS, KIND_EVENT)
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1
_F32 = np.dtype("<f4")
_JSON_SEPARATORS = (",", ":")


@dataclass(frozen=True, eq=False)
class Message:
    """One decoded wire message.

    Attributes
    ----------
    topic : str
        Topic the message was published on (``STATUS_TOPIC`` for status messages).
    kind : int
        ``KIND_ESTIMATE``, ``KIND_STATUS`` or ``KIND_EVENT``.
    version : int
        Protocol version of the frame.
    flags : int
        Quality flags: a :class:`Flags` (unknown bits are kept); events may also carry
        :class:`EventFlags` bits (test them with ``msg.flags & EventFlags.X``).
    seq : int
        Sequence number on this topic, from 0.
    t_source : float
        LSL time of the newest input sample the value depends on, s (NaN allowed for
        status messages).
    t_publish : float
        LSL ``local_clock()`` at publish, s.
    values : float32 (count,) or None
        Estimate values (a private copy); ``None`` for status messages.
    status : dict or None
        Decoded status JSON object; ``None`` for other kinds.
    event : EventData or None
        Pulse and per-channel measures of an event; ``None`` for other kinds.

    Notes
    -----
    Messages compare by identity (``values`` is an array); compare fields instead.
    """

    topic: str
    kind: int
    version: int
    flags: Flags
    seq: int
    t_source: float
    t_publish: float
    values: np.ndarray | None = None
    status: dict[str, Any] | None = None
    event: EventData | None = None

    @property
    def is_estimate(self) -> bool:
        """True for an estimate (float32 values)."""
        return self.kind == KIND_ESTIMATE

    @property
    def is_status(self) -> bool:
        """True for a status message (JSON object)."""
        return self.kind == KIND_STATUS

    @property
    def is_event(self) -> bool:
        """True for an event (one pulse and its measures per channel)."""
        return self.kind == KIND_EVENT


def flag_names(flags: int) -> list[str]:
    """Names of the bits set in ``flags``.

    Parameters
    ----------
    flags : int
        Flag word (``Flags`` or plain int).

    Returns
    -------
    list of str
        ``["OK"]`` when no bit is set; unknown bits are reported as one hex entry
        such as ``"0x10000"``.
    """
    value = int(flags)
    if value == 0:
        return ["OK"]
    members = [*Flags, *EventFlags]
    names = [m.name for m in members if m.value and value & m.value and m.name]
    known = 0
    for m in members:
        known |= m.value
    unknown = value & ~known
    if unknown:
        names.append(hex(unknown))
    return names


def encode_topic(topic: str) -> bytes:
    """Validate a topic and return its UTF-8 bytes (without the NUL separator).

    Parameters
    ----------
    topic : str
        Topic name, 1..``MAX_TOPIC_BYTES`` UTF-8 bytes, no NUL character.

    Returns
    -------
    bytes
        The topic encoded as UTF-8.

    Raises
    ------
    ProtocolError
        If the topic is not a str, is empty, too long, contains NUL or cannot be
        encoded as UTF-8.
    """
    if not isinstance(topic, str):
        raise ProtocolError(
            f"topic must be a str, got {type(topic).__name__}",
            "pass the topic name as text, e.g. 'cortex'",
        )
    try:
        raw = topic.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtocolError(
            f"topic {topic!r} cannot be encoded as UTF-8 ({exc.reason})",
            "use a topic made of valid Unicode characters (ASCII recommended)",
        ) from None
    if not 1 <= len(raw) <= MAX_TOPIC_BYTES:
        raise ProtocolError(
            f"topic {topic!r} is {len(raw)} UTF-8 bytes; expected 1..{MAX_TOPIC_BYTES}",
            "choose a short, non-empty topic name",
        )
    if b"\x00" in raw:
        raise ProtocolError(
            f"topic {topic!r} contains a NUL character; NUL separates topic and header",
            "remove the NUL character from the topic name",
        )
    return raw


def _check_seq(seq: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)):
        raise ProtocolError(
            f"seq must be an int, got {type(seq).__name__}", "pass the message counter as int"
        )
    seq = int(seq)
    if not 0 <= seq <= _U64_MAX:
        raise ProtocolError(
            f"seq {seq} is outside the u64 range 0..2**64-1",
            "count messages from 0 per topic",
        )
    return seq


T = TypeVar("T")


def _converted(conv: Callable[[Any], T], value: object, message: str, fix: str) -> T:
    """``conv(value)``, or a :class:`ProtocolError` with ``message`` and ``fix``."""
    try:
        return conv(value)
    except (TypeError, ValueError):
        raise ProtocolError(message, fix) from None


def _check_flags(flags: int) -> int:
    fix = "combine rtdecode.types.Flags members with |"
    value = _converted(int, flags, f"flags must be an int / Flags, got {type(flags).__name__}", fix)
    if not 0 <= value <= _U32_MAX:
        raise ProtocolError(f"flags {value} is outside the u32 range 0..2**32-1", fix)
    return value


def _check_time(name: str, t: float, *, allow_nan: bool) -> float:
    fix = "pass an LSL time from pylsl.local_clock()"
    value = _converted(float, t, f"{name} must be a float (s), got {type(t).__name__}", fix)
    if not math.isfinite(value) and not (allow_nan and math.isnan(value)):
        raise ProtocolError(f"{name} is {value}; expected a finite LSL time in s", fix)
    return value


def _data_topic(topic: str, what: str) -> bytes:
    """UTF-8 bytes of a topic for estimates / events (checked, not the status topic)."""
    raw = encode_topic(topic)
    if topic == STATUS_TOPIC:
        raise ProtocolError(
            f"topic {STATUS_TOPIC!r} is reserved for status messages",
            f"publish {what} under another topic, e.g. 'cortex' or 'tms'",
        )
    return raw


def _check_count(n: int, name: str, meaning: str) -> int:
    """A header ``count``: an int in 1..2**32-1."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ProtocolError(f"{name} must be an int, got {type(n).__name__}", f"pass {meaning}")
    if not 1 <= int(n) <= _U32_MAX:
        raise ProtocolError(f"{name} is {n}; expected 1..2**32-1", f"pass {meaning}")
    return int(n)


class EstimateEncoder:
    """Hot-path encoder of estimate frames for one topic, reusing one buffer.

    The frame buffer is allocated once in the constructor; :meth:`encode` writes the
    header with ``struct.pack_into`` and copies the values through a numpy view, so a
    call allocates nothing proportional to the message.

    Parameters
    ----------
    topic : str
        Output topic, 1..63 UTF-8 bytes, no NUL, not ``STATUS_TOPIC``.
    n_values : int
        Number of float32 values per estimate (>= 1).

    Raises
    ------
    ProtocolError
        If the topic or ``n_values`` is invalid.
    """

    def __init__(self, topic: str, n_values: int) -> None:
        raw = _data_topic(topic, "estimates")
        self.topic = topic
        self.n_values = _check_count(n_values, "n_values", "the number of output values of the decoder")
        self._header_offset = len(raw) + 1
        self._values_offset = self._header_offset + HEADER_SIZE
        self._buf = bytearray(self._values_offset + 4 * self.n_values)
        self._buf[: len(raw)] = raw  # the NUL separator is already 0
        self._view = memoryview(self._buf)
        self._values = np.frombuffer(
            self._buf, dtype=_F32, count=self.n_values, offset=self._values_offset
        )

    @property
    def frame_size(self) -> int:
        """Size of each encoded frame, bytes."""
        return len(self._buf)

    def encode(
        self,
        seq: int,
        flags: int,
        t_source: float,
        t_publish: float,
        values: np.ndarray,
    ) -> memoryview:
        """Encode one estimate into the reused buffer.

        Parameters
        ----------
        seq : int
            Sequence number on this topic (u64).
        flags : int or Flags
            Quality flags (u32).
        t_source : float
            LSL time of the newest input sample the values depend on, s (finite).
        t_publish : float
            LSL ``local_clock()`` at publish, s (finite).
        values : float (n_values,)
            Estimate values; cast to float32. Every value must be finite after the
            cast.

        Returns
        -------
        memoryview
            The frame. It is the encoder's own buffer: valid until the next call, so
            send it (ZeroMQ copies it with ``copy=True``) before encoding again.

        Raises
        ------
        ProtocolError
            If ``values`` has the wrong shape or a non-finite value, or a header field
            is out of range. The daemon must replace non-finite values by the safe
            value and set a flag before this; this check is the last guard.
        """
        if not (type(seq) is int and type(flags) is int and type(t_source) is float  # the daemon's
                and type(t_publish) is float and 0 <= seq <= _U64_MAX and 0 <= flags <= _U32_MAX  # hot
                and math.isfinite(t_source) and math.isfinite(t_publish)):  # path: checked inline
            seq = _check_seq(seq)
            flags = _check_flags(flags)
            t_source = _check_time("t_source", t_source, allow_nan=False)
            t_publish = _check_time("t_publish", t_publish, allow_nan=False)
        if (type(values) is np.ndarray and values.dtype == _F32
                and values.shape == self._values.shape):  # the daemon's hot path: no casting
            self._values[:] = values
        else:
            self._copy_values(values)
        # a finite sum means every value is finite (summed in float64: huge finite float32 values
        # cannot overflow it, so they neither warn nor take the slow check)
        if not math.isfinite(self._values.sum(dtype=np.float64)) and not np.isfinite(self._values).all():
            bad = int(np.count_nonzero(~np.isfinite(self._values)))
            raise ProtocolError(
                f"estimate for topic {self.topic!r} has {bad} non-finite value(s) "
                "(NaN/Inf, or too large for float32); NaN is never published",
                "replace non-finite outputs by the safe value and set Flags.CLAMPED",
            )
        _HEADER.pack_into(
            self._buf,
            self._header_offset,
            MAGIC,
            VERSION,
            KIND_ESTIMATE,
            flags,
            self.n_values,
            seq,
            t_source,
            t_publish,
        )
        return self._view

    def _copy_values(self, values: np.ndarray) -> None:
        """Check and cast any array-like into the frame's value slots (float32)."""
        try:
            shape = np.shape(values)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(
                f"estimate values for topic {self.topic!r} are not an array: {exc}",
                "pass a 1-D float array",
            ) from None
        if shape != (self.n_values,):
            raise ProtocolError(
                f"estimate for topic {self.topic!r} has shape {shape}; expected ({self.n_values},)",
                "pass one 1-D array of the decoder's outputs per message",
            )
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                np.copyto(self._values, values, casting="same_kind")
            except TypeError as exc:
                raise ProtocolError(
                    f"estimate values for topic {self.topic!r} cannot be cast to float32: {exc}",
                    "pass a float array",
                ) from None


def encode_estimate(
    topic: str,
    seq: int,
    flags: int,
    t_source: float,
    t_publish: float,
    values: np.ndarray,
) -> bytes:
    """Encode one estimate frame (convenience; allocates, use ``EstimateEncoder`` per tick).

    Parameters
    ----------
    topic : str
        Output topic.
    seq : int
        Sequence number on this topic.
    flags : int or Flags
        Quality flags.
    t_source : float
        LSL time of the newest input sample the values depend on, s.
    t_publish : float
        LSL ``local_clock()`` at publish, s.
    values : float (n,)
        Estimate values, all finite after the cast to float32.

    Returns
    -------
    bytes
        The frame.
    """
    try:
        n = np.shape(values)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(
            f"estimate values are not an array: {exc}", "pass a 1-D float array"
        ) from None
    if len(n) != 1:
        raise ProtocolError(
            f"estimate values have shape {n}; expected a 1-D array (n,)",
            "pass one 1-D array of the decoder's outputs",
        )
    encoder = EstimateEncoder(topic, n[0])
    return bytes(encoder.encode(seq, flags, t_source, t_publish, values))


class EventEncoder:
    """Encoder of event frames (one pulse, ``n_channels`` x ``n_measures`` values) for one topic.

    Like :class:`EstimateEncoder` it allocates its frame buffer once; :meth:`encode` writes
    the two headers with ``struct.pack_into`` and copies values and channel flags through
    numpy views (the payload layout is in :mod:`rtdecode.sinks.event_payload`).

    Parameters
    ----------
    topic : str
        Output topic, 1..63 UTF-8 bytes, no NUL, not ``STATUS_TOPIC``.
    n_channels : int
        Measured channels per pulse (>= 1), the header's ``count``.
    n_measures : int
        Measures per channel (default 4: ``MEASURES``).

    Raises
    ------
    ProtocolError
        If the topic or a count is invalid.
    """

    def __init__(self, topic: str, n_channels: int, n_measures: int = 4) -> None:
        raw = _data_topic(topic, "events")
        self.topic = topic
        self.n_channels = _check_count(n_channels, "n_channels", "the number of measured channels")
        self.n_measures = _check_count(n_measures, "n_measures", "the number of measures (4)")
        self._header_offset = len(raw) + 1
        self._event_offset = self._header_offset + HEADER_SIZE
        start = self._event_offset + event_frame_size(0, 0)
        self._buf = bytearray(self._event_offset + event_frame_size(self.n_channels, self.n_measures))
        self._buf[: len(raw)] = raw
        self._view = memoryview(self._buf)
        n_values = self.n_channels * self.n_measures
        self._values = np.frombuffer(self._buf, dtype=_F32, count=n_values, offset=start)
        self._values2d = self._values.reshape(self.n_channels, self.n_measures)
        self._flags = np.frombuffer(self._buf, dtype="<u4", count=self.n_channels,
                                    offset=start + 4 * n_values)

    @property
    def frame_size(self) -> int:
        """Size of each encoded frame, bytes."""
        return len(self._buf)

    def encode(self, seq: int, flags: int, t_source: float, t_publish: float, *, pulse_id: int,
               t_pulse: float, values: np.ndarray, channel_flags: np.ndarray,
               window_ms: tuple[float, float], intensity: float = 0.0,
               intensity_unit: str = "") -> memoryview:
        """Encode one event into the reused buffer.

        Parameters
        ----------
        seq, flags, t_source, t_publish
            Header fields as for :meth:`EstimateEncoder.encode`; ``t_source`` is the time
            of the newest sample the measures depend on (the pulse time when none came).
        pulse_id : int
            Pulse number (u64).
        t_pulse : float
            LSL time of the pulse, s.
        values : float (n_channels, n_measures)
            Measures per channel; all finite after the cast to float32.
        channel_flags : int (n_channels,)
            Flag bits per channel (u32).
        window_ms : (float, float)
            Post-pulse window of the measures, ms.
        intensity : float, optional
            Stimulus intensity; 0 when unknown.
        intensity_unit : str, optional
            ``""`` (unknown), ``"%MSO"`` or ``"%RMT"``.

        Returns
        -------
        memoryview
            The frame (the encoder's buffer: send it before encoding again).

        Raises
        ------
        ProtocolError
            A field out of range, values of the wrong shape or not finite.
        """
        seq = _check_seq(seq)
        flags = _check_flags(flags)
        t_source = _check_time("t_source", t_source, allow_nan=False)
        t_publish = _check_time("t_publish", t_publish, allow_nan=False)
        unit = check_event_fields(pulse_id, t_pulse, intensity, intensity_unit, self.n_measures)
        if np.shape(values) != self._values2d.shape or np.shape(channel_flags) != self._flags.shape:
            raise ProtocolError(
                f"event for topic {self.topic!r} has values {np.shape(values)} and channel flags "
                f"{np.shape(channel_flags)}; expected {self._values2d.shape} and {self._flags.shape}",
                "pass one row of measures and one flag word per measured channel",
            )
        with np.errstate(over="ignore", invalid="ignore"):
            np.copyto(self._values2d, values, casting="unsafe")
        if not np.isfinite(self._values).all():
            raise ProtocolError(f"event for topic {self.topic!r} (pulse {pulse_id}) has non-finite "
                                "values; NaN is never published",
                                "publish 0 with a flag for measures that do not exist")
        np.copyto(self._flags, channel_flags, casting="unsafe")
        _HEADER.pack_into(self._buf, self._header_offset, MAGIC, VERSION, KIND_EVENT, flags,
                          self.n_channels, seq, t_source, t_publish)
        pack_event_header(self._buf, self._event_offset, int(pulse_id), float(t_pulse),
                          float(intensity), unit, self.n_measures,
                          (float(window_ms[0]), float(window_ms[1])))
        return self._view


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Flags):
        return int(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _finite_or_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def _status_json(status: object) -> bytes:
    """A status dict as compact, strict UTF-8 JSON (non-finite floats as ``null``)."""
    if not isinstance(status, dict):
        raise ProtocolError(
            f"status must be a dict (JSON object), got {type(status).__name__}",
            "pass the status as a dict with str keys",
        )
    try:
        try:
            text = json.dumps(
                status, allow_nan=False, separators=_JSON_SEPARATORS, default=_json_default
            )
        except ValueError:
            text = json.dumps(
                _finite_or_none(json.loads(json.dumps(status, default=_json_default))),
                allow_nan=False,
                separators=_JSON_SEPARATORS,
            )
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(
            f"status cannot be encoded as JSON: {exc}",
            "use only dict/list/str/int/float/bool/None (and numpy scalars) in the status",
        ) from None
    payload = text.encode("utf-8")
    if len(payload) > _U32_MAX:
        raise ProtocolError(
            f"status JSON is {len(payload)} bytes; expected at most 2**32-1",
            "publish a smaller status",
        )
    return payload


def encode_status(
    topic: str,
    seq: int,
    t_publish: float,
    status: dict[str, Any],
    flags: int = 0,
    *,
    t_source: float = math.nan,
) -> bytes:
    """Encode one status (heartbeat) frame.

    Parameters
    ----------
    topic : str
        Topic, normally ``STATUS_TOPIC``.
    seq : int
        Sequence number on this topic.
    t_publish : float
        LSL ``local_clock()`` at publish, s.
    status : dict
        JSON-serialisable object (numpy scalars and arrays are converted). NaN and
        infinite floats are sent as ``null`` so strict JSON parsers accept the payload.
    flags : int or Flags, optional
        Quality flags of the service as a whole.
    t_source : float, optional
        LSL time of the newest input sample, s; NaN (default) when unknown.

    Returns
    -------
    bytes
        The frame.

    Raises
    ------
    ProtocolError
        If ``status`` is not a dict or not JSON-serialisable, or a field is invalid.
    """
    raw_topic = encode_topic(topic)
    seq = _check_seq(seq)
    flags = _check_flags(flags)
    t_publish = _check_time("t_publish", t_publish, allow_nan=False)
    t_source = _check_time("t_source", t_source, allow_nan=True)
    payload = _status_json(status)
    header = _HEADER.pack(
        MAGIC, VERSION, KIND_STATUS, flags, len(payload), seq, t_source, t_publish
    )
    return b"".join((raw_topic, b"\x00", header, payload))


_FIX_PEER = "check that the publisher speaks the rtdecode protocol (docs/protocol.md)"
_FIX_VERSIONS = "run publisher and subscriber from matching rtdecode versions"


def decode(frame: bytes | bytearray | memoryview) -> Message:
    """Decode one frame.

    Parameters
    ----------
    frame : bytes, bytearray or memoryview
        One complete ZeroMQ frame.

    Returns
    -------
    Message
        The decoded message; ``values`` is a private float32 copy.

    Raises
    ------
    ProtocolError
        For any malformed input: no NUL within the first 64 bytes, empty or non-UTF-8
        topic, short header, bad magic, unsupported version, unknown kind, ``count``
        inconsistent with the frame length, non-finite estimate / event values or times,
        an event payload that does not match its layout, bad JSON or a status that is not
        a JSON object. No other exception type escapes.
    """
    data = _frame_bytes(frame)
    topic, start = _split_topic(data)
    kind, flags, count, seq, t_source, t_publish = _read_header(data, start, topic)
    payload = start + HEADER_SIZE
    where = f"on topic {topic!r}"
    if kind == KIND_EVENT:
        _require_finite_source(t_source, "event", where)
        event = parse_event_payload(data, payload, count, f"{where} (seq {seq})",
                                    bool(flags & EventFlags.PREDICTION))
        return Message(topic, kind, VERSION, Flags(flags), seq, t_source, t_publish, event=event)
    if kind == KIND_ESTIMATE:
        _require_finite_source(t_source, "estimate", where)
        values = _estimate_values(data, payload, count, f"{where} (seq {seq})")
        return Message(topic, kind, VERSION, Flags(flags), seq, t_source, t_publish, values, None)
    status = _status_object(data, payload, count, where)
    return Message(topic, kind, VERSION, Flags(flags), seq, t_source, t_publish, None, status)


def _frame_bytes(frame: object) -> bytes:
    """The frame as bytes (a bytearray or memoryview copied)."""
    if isinstance(frame, bytes):
        return frame
    if not isinstance(frame, (bytearray, memoryview)):
        raise ProtocolError(
            f"frame must be bytes, bytearray or memoryview, got {type(frame).__name__}",
            "pass the received ZeroMQ frame as bytes",
        )
    try:
        return bytes(frame)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(
            f"frame buffer cannot be read as bytes: {exc}", "pass the received frame as bytes"
        ) from None


def _split_topic(data: bytes) -> tuple[str, int]:
    """The topic and the offset of the header after its NUL separator."""
    nul = data.find(b"\x00", 0, MAX_TOPIC_BYTES + 1)
    if nul < 0:
        raise ProtocolError(
            f"no NUL topic separator within the first {MAX_TOPIC_BYTES + 1} bytes "
            f"(frame of {len(data)} bytes)",
            _FIX_PEER,
        )
    if nul == 0:
        raise ProtocolError("empty topic (frame starts with NUL)", _FIX_PEER)
    try:
        return data[:nul].decode("utf-8"), nul + 1
    except UnicodeDecodeError:
        raise ProtocolError(f"topic {data[:nul]!r} is not valid UTF-8", _FIX_PEER) from None


def _read_header(data: bytes, start: int, topic: str) -> tuple[int, int, int, int, float, float]:
    """The checked header at ``start``: kind, flags, count, seq, t_source (s), t_publish (s)."""
    if len(data) - start < HEADER_SIZE:
        raise ProtocolError(
            f"frame on topic {topic!r} has {len(data) - start} bytes after the topic; "
            f"expected a {HEADER_SIZE}-byte header",
            _FIX_PEER,
        )
    magic, version, kind, flags, count, seq, t_source, t_publish = _HEADER.unpack_from(data, start)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r} on topic {topic!r}; expected {MAGIC!r}", _FIX_PEER)
    if version != VERSION:
        raise ProtocolError(
            f"unsupported protocol version {version} on topic {topic!r}; "
            f"this rtdecode reads version {VERSION}",
            _FIX_VERSIONS,
        )
    if kind not in _KINDS:
        raise ProtocolError(
            f"unknown message kind {kind} on topic {topic!r}; expected "
            f"{KIND_ESTIMATE} (estimate), {KIND_STATUS} (status) or {KIND_EVENT} (event)",
            _FIX_VERSIONS,
        )
    if not math.isfinite(t_publish):
        raise ProtocolError(
            f"t_publish is {t_publish} on topic {topic!r}; expected finite", _FIX_PEER
        )
    return kind, flags, count, seq, t_source, t_publish


def _require_finite_source(t_source: float, what: str, where: str) -> None:
    if not math.isfinite(t_source):
        raise ProtocolError(f"{what} t_source is {t_source} {where}; expected finite", _FIX_PEER)


def _estimate_values(data: bytes, start: int, count: int, where: str) -> np.ndarray:
    """The estimate's ``count`` float32 values from ``start`` (a private, finite copy)."""
    payload_len = len(data) - start
    if payload_len != 4 * count:
        raise ProtocolError(
            f"estimate {where} declares {count} float32 values "
            f"({4 * count} bytes) but carries {payload_len} payload bytes",
            _FIX_PEER,
        )
    values = np.frombuffer(data, dtype=_F32, count=count, offset=start).astype(np.float32)
    if not np.isfinite(values).all():
        raise ProtocolError(
            f"estimate {where} contains non-finite values; the protocol never carries NaN/Inf",
            "fix the publisher: replace non-finite outputs by the safe value",
        )
    return values


def _status_object(data: bytes, start: int, count: int, where: str) -> dict[str, Any]:
    """The status payload from ``start``: ``count`` bytes of UTF-8 JSON holding an object."""
    payload_len = len(data) - start
    if payload_len != count:
        raise ProtocolError(
            f"status {where} declares {count} payload bytes but carries {payload_len}", _FIX_PEER
        )
    try:
        status = json.loads(data[start:].decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"status payload {where} is not UTF-8 JSON: {exc}", _FIX_PEER) from None
    if not isinstance(status, dict):
        raise ProtocolError(
            f"status payload {where} is a JSON {type(status).__name__}; expected a JSON object",
            _FIX_PEER,
        )
    return status
