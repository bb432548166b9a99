"""Property-based tests (hypothesis) of the wire decoder.

Any bytes a subscriber may receive — random, truncated, corrupted or lengthened real
frames, wrong magic / version / kind / count — decode to a Message or raise
``ProtocolError`` (exit code 7), never another exception. Valid messages round-trip
exactly (topic, flags, seq, times, values or status).
"""

from __future__ import annotations

import math
import struct

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rtdecode.errors import ProtocolError
from rtdecode.sinks.protocol import (
    HEADER_FORMAT,
    HEADER_SIZE,
    KIND_ESTIMATE,
    KIND_STATUS,
    MAGIC,
    MAX_TOPIC_BYTES,
    STATUS_TOPIC,
    VERSION,
    Message,
    decode,
    encode_estimate,
    encode_status,
)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

topics = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1, max_size=20,
).filter(lambda t: 1 <= len(t.encode("utf-8")) <= MAX_TOPIC_BYTES and t != STATUS_TOPIC)
finite_times = st.floats(allow_nan=False, allow_infinity=False, width=64)
f32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
seqs = st.integers(0, 2**64 - 1)
flag_words = st.integers(0, 2**32 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _decode_or_protocol_error(frame: bytes) -> Message | None:
    try:
        return decode(frame)
    except ProtocolError as exc:
        assert exc.exit_code == 7
        assert str(exc)
        return None


@st.composite
def estimate_frames(draw: st.DrawFn) -> tuple[bytes, dict]:
    fields = {
        "topic": draw(topics),
        "seq": draw(seqs),
        "flags": draw(flag_words),
        "t_source": draw(finite_times),
        "t_publish": draw(finite_times),
        "values": np.array(draw(st.lists(f32, min_size=1, max_size=16)), dtype=np.float32),
    }
    frame = encode_estimate(fields["topic"], fields["seq"], fields["flags"], fields["t_source"],
                            fields["t_publish"], fields["values"])
    return frame, fields


@st.composite
def status_frames(draw: st.DrawFn) -> tuple[bytes, dict]:
    fields = {
        "topic": draw(topics | st.just(STATUS_TOPIC)),
        "seq": draw(seqs),
        "flags": draw(flag_words),
        "t_source": draw(finite_times | st.just(math.nan)),
        "t_publish": draw(finite_times),
        "status": draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5)),
    }
    frame = encode_status(fields["topic"], fields["seq"], fields["t_publish"], fields["status"],
                          fields["flags"], t_source=fields["t_source"])
    return frame, fields


any_frame = estimate_frames() | status_frames()


@SETTINGS
@given(estimate_frames())
def test_estimate_round_trip(case: tuple[bytes, dict]) -> None:
    frame, f = case
    msg = decode(frame)
    assert msg.is_estimate and msg.kind == KIND_ESTIMATE and msg.version == VERSION
    assert msg.topic == f["topic"] and msg.seq == f["seq"] and int(msg.flags) == f["flags"]
    assert msg.t_source == f["t_source"] and msg.t_publish == f["t_publish"]
    assert msg.values is not None and msg.values.dtype == np.float32
    np.testing.assert_array_equal(msg.values, f["values"])
    assert decode(bytearray(frame)).seq == f["seq"] and decode(memoryview(frame)).seq == f["seq"]


@SETTINGS
@given(status_frames())
def test_status_round_trip(case: tuple[bytes, dict]) -> None:
    frame, f = case
    msg = decode(frame)
    assert msg.is_status and msg.kind == KIND_STATUS
    assert msg.topic == f["topic"] and msg.seq == f["seq"] and int(msg.flags) == f["flags"]
    assert msg.t_publish == f["t_publish"]
    assert msg.t_source == f["t_source"] or (math.isnan(msg.t_source) and math.isnan(f["t_source"]))
    assert msg.status == f["status"]


@SETTINGS
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x00")
@example(b"t\x00")
@example(b"t\x00" + b"RTDC")
@example(b"\xff\xfe\x00" + b"\x00" * HEADER_SIZE)
def test_arbitrary_bytes_only_protocol_error(data: bytes) -> None:
    _decode_or_protocol_error(data)


@SETTINGS
@given(any_frame, st.data())
def test_truncated_frames_rejected(case: tuple[bytes, dict], data: st.DataObject) -> None:
    frame, _ = case
    cut = data.draw(st.integers(0, len(frame) - 1))
    assert _decode_or_protocol_error(frame[:cut]) is None


@SETTINGS
@given(any_frame, st.binary(min_size=1, max_size=16))
def test_extended_frames_rejected(case: tuple[bytes, dict], extra: bytes) -> None:
    frame, _ = case
    assert _decode_or_protocol_error(frame + extra) is None


@SETTINGS
@given(any_frame, st.data())
def test_corrupted_frames_only_protocol_error(case: tuple[bytes, dict], data: st.DataObject) -> None:
    frame = bytearray(case[0])
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    msg = _decode_or_protocol_error(bytes(frame))
    if msg is not None and msg.values is not None:
        assert np.isfinite(msg.values).all()  # a decoded estimate is never NaN / Inf


def _header_at(frame: bytes) -> int:
    return frame.index(b"\x00") + 1


@SETTINGS
@given(any_frame, st.binary(min_size=4, max_size=4).filter(lambda m: m != MAGIC))
def test_wrong_magic_rejected(case: tuple[bytes, dict], magic: bytes) -> None:
    frame = bytearray(case[0])
    h = _header_at(case[0])
    frame[h : h + 4] = magic
    assert _decode_or_protocol_error(bytes(frame)) is None


@SETTINGS
@given(any_frame, st.integers(0, 2**16 - 1).filter(lambda v: v != VERSION))
def test_wrong_version_rejected(case: tuple[bytes, dict], version: int) -> None:
    frame = bytearray(case[0])
    struct.pack_into("<H", frame, _header_at(case[0]) + 4, version)
    assert _decode_or_protocol_error(bytes(frame)) is None


@SETTINGS
@given(any_frame, st.integers(0, 2**16 - 1))
def test_any_kind_only_protocol_error(case: tuple[bytes, dict], kind: int) -> None:
    frame = bytearray(case[0])
    struct.pack_into("<H", frame, _header_at(case[0]) + 6, kind)
    _decode_or_protocol_error(bytes(frame))


@SETTINGS
@given(any_frame, st.integers(0, 2**32 - 1))
def test_mismatched_count_rejected(case: tuple[bytes, dict], count: int) -> None:
    frame = bytearray(case[0])
    h = _header_at(case[0])
    (old,) = struct.unpack_from("<I", frame, h + 12)
    struct.pack_into("<I", frame, h + 12, count)
    msg = _decode_or_protocol_error(bytes(frame))
    assert (msg is None) or count == old


@SETTINGS
@given(
    topic=st.binary(min_size=1, max_size=70),
    header=st.tuples(st.binary(min_size=4, max_size=4), st.integers(0, 2**16 - 1),
                     st.integers(0, 2**16 - 1), flag_words, st.integers(0, 2**32 - 1), seqs,
                     st.floats(width=64), st.floats(width=64)),
    payload=st.binary(max_size=80),
)
def test_structured_garbage_only_protocol_error(topic: bytes, header: tuple, payload: bytes) -> None:
    """Frames built field by field with arbitrary values (NaN times, any kind / count)."""
    frame = topic + b"\x00" + struct.pack(HEADER_FORMAT, *header) + payload
    msg = _decode_or_protocol_error(frame)
    if msg is not None:
        assert math.isfinite(msg.t_publish)
        if msg.values is not None:
            assert math.isfinite(msg.t_source) and np.isfinite(msg.values).all()
        else:
            assert isinstance(msg.status, dict)


@SETTINGS
@given(st.binary(max_size=200))
def test_json_payload_garbage_only_protocol_error(payload: bytes) -> None:
    header = struct.pack(HEADER_FORMAT, MAGIC, VERSION, KIND_STATUS, 0, len(payload), 0,
                         math.nan, 1.0)
    msg = _decode_or_protocol_error(b"_status\x00" + header + payload)
    assert msg is None or isinstance(msg.status, dict)


def test_deeply_nested_json_is_a_protocol_error() -> None:
    payload = b"[" * 100_000 + b"]" * 100_000
    header = struct.pack(HEADER_FORMAT, MAGIC, VERSION, KIND_STATUS, 0, len(payload), 0,
                         math.nan, 1.0)
    assert _decode_or_protocol_error(b"_status\x00" + header + payload) is None


def test_huge_json_integer_is_a_protocol_error() -> None:
    """Python refuses ints over 4300 digits with ValueError; the decoder turns it into ProtocolError."""
    payload = b'{"n":' + b"9" * 5000 + b"}"
    header = struct.pack(HEADER_FORMAT, MAGIC, VERSION, KIND_STATUS, 0, len(payload), 0,
                         math.nan, 1.0)
    assert _decode_or_protocol_error(b"_status\x00" + header + payload) is None
