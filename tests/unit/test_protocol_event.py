"""Event messages (kind 3): round trip, validation, malformed frames, old kinds unchanged."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from rtdecode.errors import ProtocolError
from rtdecode.sinks.event_payload import EVENT_SIZE, MEASURES, EventFlags
from rtdecode.sinks.protocol import (
    HEADER_SIZE,
    KIND_EVENT,
    EstimateEncoder,
    EventEncoder,
    decode,
    flag_names,
)
from rtdecode.types import Flags


def _event(enc: EventEncoder, **kw: object) -> bytes:
    m = enc.n_channels
    args: dict = dict(pulse_id=41, t_pulse=100.25, values=np.arange(4 * m, dtype=np.float32)
                      .reshape(m, 4), channel_flags=np.full(m, EventFlags.NO_RESPONSE),
                      window_ms=(20.0, 50.0), intensity=120.0, intensity_unit="%RMT")
    args.update(kw)
    return bytes(enc.encode(7, EventFlags.PREACTIVATED | Flags.GAP, 100.3, 100.31, **args))


def test_round_trip() -> None:
    enc = EventEncoder("tms", 15)
    frame = _event(enc)
    assert len(frame) == enc.frame_size == 4 + 40 + 32 + 15 * (16 + 4)
    msg = decode(frame)
    assert msg.is_event and not msg.is_estimate and not msg.is_status and msg.kind == KIND_EVENT
    assert msg.topic == "tms" and msg.seq == 7 and msg.t_source == 100.3
    assert msg.flags & EventFlags.PREACTIVATED and msg.flags & Flags.GAP
    assert flag_names(msg.flags) == ["GAP", "PREACTIVATED"]
    ev = msg.event
    assert ev is not None and ev.pulse_id == 41 and ev.t_pulse == 100.25
    assert ev.intensity == 120.0 and ev.intensity_unit == "%RMT" and ev.window_ms == (20.0, 50.0)
    np.testing.assert_array_equal(ev.values, np.arange(60, dtype=np.float32).reshape(15, 4))
    np.testing.assert_array_equal(ev.channel_flags, np.full(15, int(EventFlags.NO_RESPONSE)))
    np.testing.assert_array_equal(ev.measure("p2p_uv"), ev.values[:, MEASURES.index("p2p_uv")])


def test_encoder_reuses_one_buffer() -> None:
    enc = EventEncoder("tms", 3)
    a = enc.encode(0, 0, 1.0, 1.0, pulse_id=0, t_pulse=1.0, values=np.zeros((3, 4)),
                   channel_flags=np.zeros(3), window_ms=(20, 50))
    b = enc.encode(1, 0, 2.0, 2.0, pulse_id=1, t_pulse=2.0, values=np.ones((3, 4)),
                   channel_flags=np.zeros(3), window_ms=(20, 50))
    assert a.obj is b.obj  # the same bytearray: no allocation proportional to the message
    assert decode(bytes(b)).event.pulse_id == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("kw", "match"), [
    ({"values": np.zeros((2, 4))}, "expected"),
    ({"values": np.full((3, 4), np.nan)}, "non-finite"),
    ({"channel_flags": np.zeros(4)}, "expected"),
    ({"intensity_unit": "mT"}, "intensity unit"),
    ({"pulse_id": -1}, "pulse_id"),
    ({"pulse_id": True}, "pulse_id"),
    ({"t_pulse": float("inf")}, "finite"),
])
def test_encoder_refuses_bad_fields(kw: dict, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        _event(EventEncoder("tms", 3), **kw)


def test_encoder_refuses_bad_topic_and_counts() -> None:
    with pytest.raises(ProtocolError, match="reserved"):
        EventEncoder("_status", 3)
    with pytest.raises(ProtocolError, match="n_channels"):
        EventEncoder("tms", 0)


def _payload_offset(frame: bytes) -> int:
    return frame.index(b"\x00") + 1 + HEADER_SIZE


def test_decode_refuses_malformed_events() -> None:
    frame = _event(EventEncoder("tms", 2))
    p = _payload_offset(frame)
    with pytest.raises(ProtocolError, match="payload bytes"):
        decode(frame[:-4])
    with pytest.raises(ProtocolError, match="at least"):
        decode(frame[: p + 8])
    bad = bytearray(frame)
    struct.pack_into("<H", bad, p + 22, 0)  # n_measures = 0
    with pytest.raises(ProtocolError, match="measures"):
        decode(bytes(bad))
    bad = bytearray(frame)
    struct.pack_into("<H", bad, p + 20, 9)  # unknown intensity unit
    with pytest.raises(ProtocolError, match="intensity unit"):
        decode(bytes(bad))
    bad = bytearray(frame)
    struct.pack_into("<f", bad, p + EVENT_SIZE, float("nan"))
    with pytest.raises(ProtocolError, match="non-finite"):
        decode(bytes(bad))
    bad = bytearray(frame)
    struct.pack_into("<d", bad, p + 8, float("nan"))  # t_pulse
    with pytest.raises(ProtocolError, match="non-finite"):
        decode(bytes(bad))


def test_more_measures_than_this_version_knows_are_read() -> None:
    """A later version may append measures: a reader keeps the ones it knows."""
    enc = EventEncoder("tms", 2, n_measures=6)
    frame = bytes(enc.encode(0, 0, 1.0, 1.0, pulse_id=3, t_pulse=1.0,
                             values=np.arange(12).reshape(2, 6), channel_flags=np.zeros(2),
                             window_ms=(20, 50)))
    ev = decode(frame).event
    assert ev is not None and ev.values.shape == (2, 6)
    np.testing.assert_array_equal(ev.measure("pre_rms_uv"), [3.0, 9.0])


def test_estimates_are_unchanged() -> None:
    frame = bytes(EstimateEncoder("cortex", 2).encode(3, Flags.HOLD, 1.0, 1.1, np.ones(2, np.float32)))
    msg = decode(frame)
    assert msg.is_estimate and msg.event is None and flag_names(msg.flags) == ["HOLD"]
    assert flag_names(1 << 20) == ["0x100000"]
