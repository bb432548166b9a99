"""Read any frame's topic and header without judging its kind (recorder, monitor).

:func:`rtdecode.sinks.protocol.decode` validates a frame completely and refuses kinds it
does not know. A recorder or a viewer must keep frames of kinds added later (e.g. pulse
events) instead: :func:`peek` reads only the topic and the fixed header and says where
the payload starts, so the caller can store or show the payload as it is.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtdecode.sinks.protocol import HEADER_FORMAT, MAGIC, MAX_TOPIC_BYTES

_HEADER = struct.Struct(HEADER_FORMAT)

__all__ = ["FrameHeader", "peek"]


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """Topic and header fields of one frame (see ``docs/protocol.md``)."""

    topic: str
    version: int
    kind: int
    flags: int
    count: int
    seq: int
    t_source: float
    t_publish: float
    payload_start: int


def peek(frame: bytes | bytearray | memoryview) -> FrameHeader | None:
    """Topic and header of ``frame``; None when it is not an rtdecode frame at all.

    Parameters
    ----------
    frame : bytes-like
        One ZeroMQ frame.

    Returns
    -------
    FrameHeader or None
        None when there is no NUL-terminated topic of 1..63 UTF-8 bytes, the header is
        short or its magic is wrong. Any version and kind are accepted.
    """
    data = bytes(frame[: MAX_TOPIC_BYTES + 1 + _HEADER.size])
    nul = data.find(b"\x00", 0, MAX_TOPIC_BYTES + 1)
    if nul < 1 or len(data) < nul + 1 + _HEADER.size:
        return None
    try:
        topic = data[:nul].decode("utf-8")
    except UnicodeDecodeError:
        return None
    magic, version, kind, flags, count, seq, t_source, t_publish = _HEADER.unpack_from(data, nul + 1)
    if magic != MAGIC:
        return None
    return FrameHeader(topic, version, kind, flags, count, seq, t_source, t_publish,
                       nul + 1 + _HEADER.size)
