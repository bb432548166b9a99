"""Wire protocol: encode/decode round trips, the reusable encoder, and a decoder that only
ever raises ProtocolError."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
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
    EstimateEncoder,
    Message,
    decode,
    encode_estimate,
    encode_status,
    flag_names,
)
from rtdecode.types import Flags

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_protocol_error(frame: bytes) -> Message | None:
    """Decode; a ProtocolError is fine, any other exception fails the test."""
    try:
        msg = decode(frame)
    except ProtocolError:
        return None
    assert isinstance(msg, Message)
    return msg


# ---------------------------------------------------------------- constants / layout


def test_header_layout() -> None:
    assert HEADER_FORMAT == "<4sHHIIQdd"
    assert HEADER_SIZE == 40
    assert MAGIC == b"RTDC" and VERSION == 1
    assert (KIND_ESTIMATE, KIND_STATUS) == (1, 2)
    assert STATUS_TOPIC == "_status" and MAX_TOPIC_BYTES == 63


def test_estimate_bytes_are_exactly_the_documented_layout() -> None:
    values = np.array([1.0, -2.5, 3.25], dtype=np.float32)
    frame = encode_estimate("cortex", 7, Flags.WARMUP | Flags.GAP, 10.5, 10.75, values)
    expected = (
        b"cortex\x00"
        + struct.pack("<4sHHIIQdd", b"RTDC", 1, 1, 1 | 16, 3, 7, 10.5, 10.75)
        + values.astype("<f4").tobytes()
    )
    assert frame == expected


# ---------------------------------------------------------------- round trips


def test_estimate_round_trip_all_fields() -> None:
    values = np.array([0.1, -1e-30, 3.4e38, -0.0, 12345.678], dtype=np.float64)
    flags = Flags.DEGRADED | Flags.CLAMPED
    frame = encode_estimate("emg", 2**63 + 5, flags, 1234.000001, 1234.002, values)
    msg = decode(frame)
    assert msg.topic == "emg"
    assert msg.kind == KIND_ESTIMATE and msg.is_estimate and not msg.is_status
    assert msg.version == VERSION
    assert msg.flags == flags and isinstance(msg.flags, Flags)
    assert msg.seq == 2**63 + 5
    assert msg.t_source == 1234.000001 and msg.t_publish == 1234.002
    assert msg.status is None
    assert msg.values.dtype == np.float32 and msg.values.shape == (5,)
    np.testing.assert_array_equal(msg.values, values.astype(np.float32))
    assert math.copysign(1.0, msg.values[3]) == -1.0


def test_status_round_trip_all_fields() -> None:
    status = {"state": "running", "samples_in": 10, "latency_ms": {"p50": 1.25}, "ok": True}
    frame = encode_status(STATUS_TOPIC, 3, 55.5, status, Flags.STALE, t_source=50.0)
    msg = decode(frame)
    assert (msg.topic, msg.kind, msg.version, msg.seq) == (STATUS_TOPIC, KIND_STATUS, 1, 3)
    assert msg.is_status and msg.values is None
    assert msg.flags == Flags.STALE
    assert msg.t_source == 50.0 and msg.t_publish == 55.5
    assert msg.status == status


def test_status_defaults_nan_t_source_and_converts_numpy_and_nan() -> None:
    status = {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": [math.inf]}
    msg = decode(encode_status(STATUS_TOPIC, 0, 1.0, status))
    assert math.isnan(msg.t_source)
    assert msg.flags == Flags.OK
    assert msg.status == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [None]}
    # the payload is strict JSON (no NaN / Infinity tokens)
    frame = encode_status(STATUS_TOPIC, 0, 1.0, {"x": math.nan})
    payload = frame[frame.index(b"\x00") + 1 + HEADER_SIZE :]
    json.loads(payload, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))


def test_status_rejects_non_dict_and_unserialisable() -> None:
    with pytest.raises(ProtocolError, match="dict"):
        encode_status(STATUS_TOPIC, 0, 1.0, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="JSON"):
        encode_status(STATUS_TOPIC, 0, 1.0, {"x": object()})


def test_unknown_flag_bits_are_kept() -> None:
    frame = encode_estimate("t", 0, 0x80000001, 1.0, 1.0, np.zeros(1))
    msg = decode(frame)
    assert int(msg.flags) == 0x80000001
    assert flag_names(msg.flags) == ["WARMUP", "0x80000000"]
    assert flag_names(0) == ["OK"]


def test_decode_accepts_memoryview_and_bytearray() -> None:
    frame = encode_estimate("t", 1, 0, 1.0, 2.0, np.arange(4.0))
    for buf in (memoryview(frame), bytearray(frame), memoryview(bytearray(frame))):
        np.testing.assert_array_equal(decode(buf).values, np.arange(4.0, dtype=np.float32))


# ---------------------------------------------------------------- EstimateEncoder


def test_encoder_reuses_one_buffer() -> None:
    enc = EstimateEncoder("cortex", 4)
    assert enc.frame_size == len("cortex") + 1 + HEADER_SIZE + 16
    rng = np.random.default_rng(0)
    first = enc.encode(0, Flags.OK, 1.0, 1.1, rng.standard_normal(4))
    buffers = set()
    for seq in range(1, 50):
        values = rng.standard_normal(4).astype(np.float32)
        frame = enc.encode(seq, Flags(seq % 128), 1.0 + seq, 1.1 + seq, values)
        buffers.add(id(frame.obj))
        assert frame is first  # the same memoryview every time: nothing is allocated
        msg = decode(frame)
        assert msg.seq == seq and int(msg.flags) == seq % 128
        assert msg.t_source == 1.0 + seq and msg.t_publish == 1.1 + seq
        np.testing.assert_array_equal(msg.values, values)
    assert len(buffers) == 1


def test_encoder_decoded_values_do_not_alias_the_buffer() -> None:
    enc = EstimateEncoder("cortex", 2)
    msg = decode(enc.encode(0, 0, 1.0, 1.0, np.array([1.0, 2.0])))
    enc.encode(1, 0, 1.0, 1.0, np.array([5.0, 6.0]))
    np.testing.assert_array_equal(msg.values, [1.0, 2.0])


def test_encoder_accepts_float64_int_and_lists() -> None:
    enc = EstimateEncoder("cortex", 3)
    for values in ([1, 2, 3], np.array([1, 2, 3], dtype=np.int16), np.array([1.0, 2.0, 3.0])):
        np.testing.assert_array_equal(decode(enc.encode(0, 0, 1.0, 1.0, values)).values, [1, 2, 3])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e39])
def test_encoder_refuses_non_finite(bad: float) -> None:
    enc = EstimateEncoder("cortex", 3)
    with pytest.raises(ProtocolError, match="non-finite") as info:
        enc.encode(0, 0, 1.0, 1.0, np.array([0.0, bad, 1.0]))
    assert info.value.fix and "safe value" in info.value.fix
    with pytest.raises(ProtocolError, match="non-finite"):
        encode_estimate("cortex", 0, 0, 1.0, 1.0, np.array([bad]))
    # the encoder still works after a refusal
    assert decode(enc.encode(1, 0, 1.0, 1.0, np.zeros(3))).seq == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": np.zeros(2)}, "shape"),
        ({"values": np.zeros((3, 1))}, "shape"),
        ({"values": np.float64(1.0)}, "shape"),
        ({"values": np.array(["a", "b", "c"])}, "float32"),
        ({"seq": -1}, "seq"),
        ({"seq": 2**64}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"flags": 2**32}, "flags"),
        ({"flags": -1}, "flags"),
        ({"t_source": math.nan}, "t_source"),
        ({"t_publish": math.inf}, "t_publish"),
    ],
)
def test_encoder_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"seq": 0, "flags": 0, "t_source": 1.0, "t_publish": 1.0, "values": np.zeros(3)}
    args.update(kwargs)
    with pytest.raises(ProtocolError, match=match):
        EstimateEncoder("cortex", 3).encode(**args)


@pytest.mark.parametrize(
    "topic", ["", "a" * 64, "é" * 32, "with\x00nul", STATUS_TOPIC, "\udc80", b"bytes"]
)
def test_encoder_rejects_bad_topics(topic: str) -> None:
    with pytest.raises(ProtocolError):
        EstimateEncoder(topic, 1)


def test_encoder_rejects_bad_n_values() -> None:
    for n in (0, -1, 1.5, True):
        with pytest.raises(ProtocolError, match="n_values"):
            EstimateEncoder("cortex", n)  # type: ignore[arg-type]


def test_longest_topic_round_trips() -> None:
    topic = "t" * MAX_TOPIC_BYTES
    assert decode(encode_estimate(topic, 0, 0, 1.0, 1.0, np.ones(1))).topic == topic


# ---------------------------------------------------------------- decode errors


def _header(**fields: object) -> bytes:
    h = {
        "magic": MAGIC,
        "version": 1,
        "kind": 1,
        "flags": 0,
        "count": 1,
        "seq": 0,
        "t_source": 1.0,
        "t_publish": 1.0,
    }
    h.update(fields)
    return struct.pack(HEADER_FORMAT, *h.values())


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"", "NUL"),
        (b"a" * 200, "NUL"),
        (b"a" * 64 + b"\x00" + _header() + bytes(4), "NUL"),
        (b"\x00" + _header() + bytes(4), "empty topic"),
        (b"\xff\xfe\x00" + _header() + bytes(4), "UTF-8"),
        (b"t\x00" + _header()[:39], "40-byte header"),
        (b"t\x00" + _header(magic=b"RTDX") + bytes(4), "magic"),
        (b"t\x00" + _header(version=2) + bytes(4), "version"),
        (b"t\x00" + _header(kind=4) + bytes(4), "kind"),  # 3 is the event kind
        (b"t\x00" + _header(count=2) + bytes(4), "declares 2"),
        (b"t\x00" + _header(count=1) + bytes(5), "declares 1"),
        (b"t\x00" + _header(t_source=math.nan) + bytes(4), "t_source"),
        (b"t\x00" + _header(t_publish=math.inf) + bytes(4), "t_publish"),
        (b"t\x00" + _header() + struct.pack("<f", math.nan), "non-finite"),
        (b"t\x00" + _header(kind=2, count=3) + b"{}", "declares 3"),
        (b"t\x00" + _header(kind=2, count=3) + b"{x}", "JSON"),
        (b"t\x00" + _header(kind=2, count=2) + b"[]", "object"),
        (b"t\x00" + _header(kind=2, count=2) + b"\xff\xff", "JSON"),
        (b"t\x00" + _header(kind=2, count=20000) + b"[" * 20000, "JSON"),
    ],
)
def test_decode_rejects_malformed(frame: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as info:
        decode(frame)
    assert info.value.fix


def test_decode_rejects_non_buffer_types() -> None:
    for bad in (None, "text", 123, [1, 2]):
        with pytest.raises(ProtocolError):
            decode(bad)  # type: ignore[arg-type]


def test_status_accepts_nan_t_source_and_estimate_empty_count() -> None:
    msg = decode(b"t\x00" + _header(kind=2, count=2, t_source=math.nan) + b"{}")
    assert msg.status == {} and math.isnan(msg.t_source)
    msg = decode(b"t\x00" + _header(count=0))
    assert msg.values.shape == (0,)


# ---------------------------------------------------------------- property tests

topics = st.text(min_size=1, max_size=MAX_TOPIC_BYTES).filter(
    lambda t: "\x00" not in t and len(t.encode("utf-8")) <= MAX_TOPIC_BYTES and t != STATUS_TOPIC
)
finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
finite_f64 = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite_f64 | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def valid_frames(draw: st.DrawFn) -> bytes:
    topic = draw(topics)
    seq = draw(st.integers(0, 2**64 - 1))
    flags = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        values = draw(st.lists(finite_f32, min_size=1, max_size=32))
        return bytes(
            EstimateEncoder(topic, len(values)).encode(
                seq, flags, draw(finite_f64), draw(finite_f64), np.array(values)
            )
        )
    status = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
    return encode_status(topic, seq, draw(finite_f64), status, flags)


@HYPOTHESIS
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes_only_raises_protocol_error(data: bytes) -> None:
    _decode_or_protocol_error(data)


@HYPOTHESIS
@given(
    topic=st.binary(min_size=1, max_size=8).filter(lambda b: b"\x00" not in b),
    version=st.integers(0, 3),
    kind=st.integers(0, 3),
    count=st.integers(0, 2**32 - 1) | st.integers(0, 40),
    t=st.floats(),
    payload=st.binary(max_size=200),
)
def test_decode_structured_garbage_only_raises_protocol_error(
    topic: bytes, version: int, kind: int, count: int, t: float, payload: bytes
) -> None:
    frame = topic + b"\x00" + struct.pack(HEADER_FORMAT, MAGIC, version, kind, 0, count, 0, t, t)
    _decode_or_protocol_error(frame + payload)


@HYPOTHESIS
@given(frame=valid_frames(), data=st.data())
def test_decode_mutated_frames_only_raises_protocol_error(
    frame: bytes, data: st.DataObject
) -> None:
    assert isinstance(decode(frame), Message)
    cut = data.draw(st.integers(0, len(frame)), label="truncate at")
    _decode_or_protocol_error(frame[:cut])
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4), label="n flips")):
        i = data.draw(st.integers(0, len(frame) - 1), label="index")
        mutated[i] ^= data.draw(st.integers(1, 255), label="xor")
    _decode_or_protocol_error(bytes(mutated))
    extra = data.draw(st.binary(min_size=1, max_size=8), label="appended")
    assert _decode_or_protocol_error(frame + extra) is None  # count no longer matches


@HYPOTHESIS
@given(
    topic=topics,
    seq=st.integers(0, 2**64 - 1),
    flags=st.integers(0, 2**32 - 1),
    t_source=finite_f64,
    t_publish=finite_f64,
    values=st.lists(finite_f32, min_size=1, max_size=64),
)
def test_estimate_round_trip_property(
    topic: str, seq: int, flags: int, t_source: float, t_publish: float, values: list[float]
) -> None:
    arr = np.array(values, dtype=np.float32)
    msg = decode(encode_estimate(topic, seq, flags, t_source, t_publish, arr))
    assert (msg.topic, msg.seq, int(msg.flags)) == (topic, seq, flags)
    assert (msg.t_source, msg.t_publish) == (t_source, t_publish)
    assert msg.values.tobytes() == arr.tobytes()  # bit-exact, including -0.0


@HYPOTHESIS
@given(
    topic=topics,
    seq=st.integers(0, 2**64 - 1),
    t_publish=finite_f64,
    status=st.dictionaries(st.text(max_size=8), json_values, max_size=6),
)
def test_status_round_trip_property(topic: str, seq: int, t_publish: float, status: dict) -> None:
    msg = decode(encode_status(topic, seq, t_publish, status))
    assert (msg.topic, msg.seq, msg.t_publish) == (topic, seq, t_publish)
    assert msg.status == status
