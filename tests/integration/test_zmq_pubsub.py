"""Publisher and Subscriber over real ZeroMQ sockets (ipc, tcp loopback, inproc).

Every receive has a timeout; the slow-joiner problem is handled by publishing probe
messages until the first one arrives. No assertion on wall-clock speed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from rtdecode.errors import SinkError
from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import (
    STATUS_TOPIC,
    EstimateEncoder,
    Message,
    encode_estimate,
    encode_status,
)
from rtdecode.sinks.zmq_pub import Publisher, check_endpoint, is_loopback_endpoint
from rtdecode.types import Flags

JOIN_TIMEOUT_S = 5.0
RECV_TIMEOUT_S = 2.0


def _estimate(topic: str, seq: int, values: np.ndarray | None = None, flags: int = 0) -> bytes:
    if values is None:
        values = np.array([seq, -seq, 0.5], dtype=np.float32)
    now = pylsl.local_clock()
    return encode_estimate(topic, seq, flags, now, now, values)


def _join(pub: Publisher, sub: Subscriber, topic: str = "cortex", seq: int = 0) -> int:
    """Publish probes on ``topic`` until ``sub`` receives one; return the next free seq.

    Probes sent after the first received one are drained, so the subscriber's view of
    ``topic`` has no gap and the next message to send has the returned seq.
    """
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while True:
        assert time.monotonic() < deadline, "subscriber never received a probe (slow joiner)"
        pub.send(_estimate(topic, seq))
        seq += 1
        msg = sub.recv(timeout_s=0.02)
        if msg is not None:
            break
    last_probe = seq - 1
    while msg is not None and not (msg.topic == topic and msg.seq == last_probe):
        msg = sub.recv(timeout_s=RECV_TIMEOUT_S)
    assert msg is not None, "probe messages were lost after the subscription was active"
    return seq


def _recv_n(sub: Subscriber, n: int) -> list[Message]:
    out = []
    for _ in range(n):
        msg = sub.recv(timeout_s=RECV_TIMEOUT_S)
        assert msg is not None, f"timed out after {len(out)} of {n} messages"
        out.append(msg)
    return out


def _drain(sub: Subscriber, quiet_s: float = 0.3) -> list[Message]:
    out = []
    while (msg := sub.recv(timeout_s=quiet_s)) is not None:
        out.append(msg)
    return out


@pytest.fixture
def tcp_pub() -> Publisher:
    with Publisher("tcp://127.0.0.1:*") as pub:
        yield pub


# ---------------------------------------------------------------- transports


def _round_trip(pub: Publisher, endpoint: str) -> None:
    with Subscriber(endpoint, topics=["cortex"]) as sub:
        seq = _join(pub, sub)
        rng = np.random.default_rng(1)
        sent = []
        enc = EstimateEncoder("cortex", 5)
        for i in range(200):
            values = rng.standard_normal(5).astype(np.float32)
            t = pylsl.local_clock()
            assert pub.send(enc.encode(seq + i, Flags(i % 4), t, t, values))
            sent.append(values)
        got = _recv_n(sub, 200)
        assert [m.seq for m in got] == list(range(seq, seq + 200))
        for m, values in zip(got, sent, strict=True):
            np.testing.assert_array_equal(m.values, values)
        assert [int(m.flags) for m in got] == [i % 4 for i in range(200)]
        stats = sub.stats()["cortex"]
        assert stats["lost"] == 0 and stats["restarts"] == 0
        assert stats["seq"] == seq + 199
        assert stats["age_s"] >= 0.0 and stats["age_max_s"] >= stats["age_p50_s"] >= 0.0
        assert stats["rate_hz"] > 0.0
        assert sub.malformed == 0


def test_pubsub_over_ipc(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/out.sock"
    with Publisher(endpoint) as pub:
        assert pub.bound_endpoint == endpoint
        _round_trip(pub, endpoint)


def test_pubsub_over_tcp_random_loopback_port(tcp_pub: Publisher) -> None:
    bound = tcp_pub.bound_endpoint
    assert bound.startswith("tcp://127.0.0.1:") and not bound.endswith(":*")
    assert int(bound.rsplit(":", 1)[1]) > 0
    _round_trip(tcp_pub, bound)
    assert tcp_pub.dropped == 0 and tcp_pub.sent >= 200


def test_pubsub_over_inproc(unique_name: str) -> None:
    endpoint = f"inproc://{unique_name}"
    with Publisher(endpoint) as pub:
        _round_trip(pub, endpoint)


def test_status_messages_arrive(tcp_pub: Publisher) -> None:
    with Subscriber(tcp_pub.bound_endpoint, topics=["cortex", STATUS_TOPIC]) as sub:
        _join(tcp_pub, sub)
        status = {"state": "running", "samples_in": 42}
        tcp_pub.send(encode_status(STATUS_TOPIC, 0, pylsl.local_clock(), status))
        msg = sub.recv(timeout_s=RECV_TIMEOUT_S)
        assert msg is not None and msg.is_status and msg.status == status
        assert sub.stats()[STATUS_TOPIC]["received"] == 1


# ---------------------------------------------------------------- topics


def test_topic_filter_is_exact(tcp_pub: Publisher) -> None:
    ep = tcp_pub.bound_endpoint
    with (
        Subscriber(ep, topics=["cortex"]) as only_cortex,
        Subscriber(ep, topics=["cortex2"]) as only_cortex2,
        Subscriber(ep) as everything,
    ):
        seq = _join(tcp_pub, only_cortex, "cortex")
        seq2 = _join(tcp_pub, only_cortex2, "cortex2")
        _drain(everything, quiet_s=0.1)  # probes; 'everything' joined while we probed
        _join(tcp_pub, everything, "zz")
        for i in range(20):
            tcp_pub.send(_estimate("cortex", seq + i))
            tcp_pub.send(_estimate("cortex2", seq2 + i))
            tcp_pub.send(_estimate("cort", i))
        got = _recv_n(only_cortex, 20)
        assert {m.topic for m in got} == {"cortex"}
        got2 = _recv_n(only_cortex2, 20)
        assert {m.topic for m in got2} == {"cortex2"}
        assert only_cortex.recv(timeout_s=0.2) is None
        assert only_cortex2.recv(timeout_s=0.2) is None
        all_msgs = _recv_n(everything, 60)
        assert sorted({m.topic for m in all_msgs}) == ["cort", "cortex", "cortex2"]
        assert set(only_cortex.stats()) == {"cortex"}


def test_subscriber_rejects_bad_topics() -> None:
    with pytest.raises(SinkError, match="empty"):
        Subscriber("tcp://127.0.0.1:5555", topics=[])
    with pytest.raises(SinkError, match="topic"):
        Subscriber("tcp://127.0.0.1:5555", topics=["a\x00b"])


# ---------------------------------------------------------------- conflate


def test_conflate_subscriber_gets_only_latest(tcp_pub: Publisher) -> None:
    with Subscriber(tcp_pub.bound_endpoint, topics=["cortex"], conflate=True) as sub:
        seq = _join(tcp_pub, sub)
        n = 500
        for i in range(n):
            tcp_pub.send(_estimate("cortex", seq + i))
        last = seq + n - 1
        received = []
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = sub.recv(timeout_s=RECV_TIMEOUT_S)
            assert msg is not None
            received.append(msg.seq)
            if msg.seq == last:
                break
        assert received[-1] == last
        assert received == sorted(received)
        assert len(received) < n // 2  # the queue kept only the latest message
        assert sub.recv(timeout_s=0.2) is None  # nothing older is left behind
        assert sub.stats()["cortex"]["lost"] == n - len(received)


# ---------------------------------------------------------------- sequence accounting


def test_sequence_gaps_and_restarts_are_counted(tcp_pub: Publisher) -> None:
    with Subscriber(tcp_pub.bound_endpoint, topics=["cortex"]) as sub:
        seq = _join(tcp_pub, sub)
        before = sub.stats()["cortex"]["received"]
        plan = [seq, seq + 1, seq + 5, seq + 6, seq + 10, 0, 1, 2]  # 3 + 3 lost, 1 restart
        for s in plan:
            tcp_pub.send(_estimate("cortex", s))
        got = _recv_n(sub, len(plan))
        assert [m.seq for m in got] == plan
        stats = sub.stats()["cortex"]
        assert stats["received"] == before + len(plan)
        assert stats["lost"] == 6
        assert stats["restarts"] == 1
        assert stats["seq"] == 2


def test_malformed_frames_are_counted_not_raised(tcp_pub: Publisher) -> None:
    with Subscriber(tcp_pub.bound_endpoint) as sub:
        seq = _join(tcp_pub, sub)
        for junk in (b"garbage", b"cortex\x00RTDC", b"cortex\x00" + b"X" * 60):
            tcp_pub.send(junk)
        tcp_pub.send(_estimate("cortex", seq))
        msg = sub.recv(timeout_s=RECV_TIMEOUT_S)
        assert msg is not None and msg.seq == seq
        assert sub.malformed == 3
        # only malformed frames within the timeout: recv returns None, never raises
        tcp_pub.send(b"junk")
        assert sub.recv(timeout_s=0.2) is None
        assert sub.malformed == 4


# ---------------------------------------------------------------- never blocking


def test_stuck_subscriber_never_blocks_publisher() -> None:
    """A subscriber that stops reading: every send returns at once; it sees the drops as
    gaps in seq (ZeroMQ PUB discards per subscriber at the high-water mark)."""
    total = 50_000
    with (
        Publisher("tcp://127.0.0.1:*", sndhwm=10) as pub,
        Subscriber(pub.bound_endpoint, topics=["cortex"], rcvhwm=10) as sub,
    ):
        seq = _join(pub, sub)
        first = seq
        enc = EstimateEncoder("cortex", 8)
        values = np.zeros(8, dtype=np.float32)
        for i in range(total):
            t = pylsl.local_clock()
            assert pub.send(enc.encode(seq + i, 0, t, t, values))
        assert pub.sent >= total and pub.dropped == 0
        got = _drain(sub)
        assert 0 < len(got) < total
        stats = sub.stats()["cortex"]
        assert stats["lost"] > 0
        assert stats["lost"] == got[-1].seq - (first - 1) - len(got)


def test_nodrop_publisher_counts_drops_and_never_blocks() -> None:
    total = 50_000
    with (
        Publisher("tcp://127.0.0.1:*", sndhwm=10, nodrop=True) as pub,
        Subscriber(pub.bound_endpoint, topics=["cortex"], rcvhwm=10) as sub,
    ):
        seq = _join(pub, sub)
        sent_before, dropped_before = pub.sent, pub.dropped
        frame = _estimate("cortex", seq)
        results = [pub.send(frame) for _ in range(total)]
        refused = results.count(False)
        assert refused > 0
        assert pub.dropped - dropped_before == refused
        assert pub.sent - sent_before == total - refused


# ---------------------------------------------------------------- endpoints and lifecycle


@pytest.mark.parametrize(
    "endpoint",
    [
        "tcp://*:5555",
        "tcp://0.0.0.0:5555",
        "tcp://192.168.1.20:5555",
        "tcp://[::]:5555",
        "tcp://eth0:5555",
        "tcp://example.org:5555",
        "pgm://eth0;239.192.1.1:5555",
    ],
)
def test_non_loopback_endpoint_refused_without_allow_remote(endpoint: str) -> None:
    assert not is_loopback_endpoint(endpoint)
    with pytest.raises(SinkError, match="sink.allow_remote") as info:
        Publisher(endpoint)
    assert endpoint in str(info.value)
    assert "127.0.0.1" in (info.value.fix or "")
    Publisher(endpoint, allow_remote=True)  # allowed explicitly (nothing is bound here)
    check_endpoint(endpoint, allow_remote=True)


@pytest.mark.parametrize(
    "endpoint",
    [
        "tcp://127.0.0.1:5555",
        "tcp://127.3.2.1:*",
        "tcp://localhost:5555",
        "tcp://[::1]:5555",
        "ipc:///tmp/x.sock",
        "inproc://name",
    ],
)
def test_loopback_endpoints_allowed(endpoint: str) -> None:
    assert is_loopback_endpoint(endpoint)
    Publisher(endpoint)  # constructor does no I/O


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5555", "tcp://", "tcp://127.0.0.1", "tcp://[::1]"])
def test_malformed_endpoint_refused(endpoint: str) -> None:
    with pytest.raises(SinkError):
        Publisher(endpoint)


def test_bind_conflict_raises_sink_error(tcp_pub: Publisher) -> None:
    taken = tcp_pub.bound_endpoint
    other = Publisher(taken)
    with pytest.raises(SinkError, match="already in use") as info:
        other.open()
    assert taken in str(info.value) and info.value.fix
    assert not other.is_open
    other.close()  # idempotent on a publisher that never opened


def test_ipc_bind_conflict_raises_sink_error(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/taken.sock"
    with Publisher(endpoint):
        with pytest.raises(SinkError, match="another running process") as info:
            Publisher(endpoint).open()
        assert endpoint in str(info.value)
    # the path is free again once the first publisher closed
    with Publisher(endpoint) as again:
        assert again.is_open


def test_bad_endpoint_raises_sink_error(tmp_path: Path) -> None:
    for endpoint in (f"ipc://{tmp_path}/missing-dir/out.sock", "tcp://127.0.0.1:notaport"):
        with pytest.raises(SinkError, match="cannot bind") as info:
            Publisher(endpoint).open()
        assert endpoint in str(info.value)


def test_ipv6_loopback_binds() -> None:
    try:
        pub = Publisher("tcp://[::1]:*").open()
    except SinkError as exc:
        pytest.skip(f"IPv6 loopback not available here: {exc.what}")
    with pub, Subscriber(pub.bound_endpoint, topics=["cortex"]) as sub:
        assert pub.bound_endpoint.startswith("tcp://[::1]:")
        _join(pub, sub)


def test_publisher_lifecycle() -> None:
    pub = Publisher("tcp://127.0.0.1:*", sndhwm=5, linger_ms=0)
    assert not pub.is_open
    with pytest.raises(SinkError, match="not open"):
        pub.send(b"x")
    with pytest.raises(SinkError, match="not open"):
        _ = pub.bound_endpoint
    pub.open()
    assert pub.open() is pub  # opening twice is a no-op
    assert pub.is_open and pub.send(_estimate("cortex", 0))
    pub.close()
    pub.close()
    assert not pub.is_open
    with pytest.raises(SinkError, match="not open"):
        pub.send(b"x")


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"sndhwm": 0}, "sndhwm"), ({"linger_ms": -1}, "linger")]
)
def test_publisher_rejects_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(SinkError, match=match):
        Publisher("tcp://127.0.0.1:*", **kwargs)


def test_subscriber_lifecycle_and_timeouts(tcp_pub: Publisher) -> None:
    sub = Subscriber(tcp_pub.bound_endpoint, topics=["cortex"])
    with pytest.raises(SinkError, match="not open"):
        sub.recv(0.0)
    with sub:
        assert sub.recv(timeout_s=0.0) is None
        assert sub.recv(timeout_s=0.05) is None
        assert sub.stats() == {} and sub.malformed == 0
    sub.close()
    with pytest.raises(SinkError, match="cannot connect"):
        Subscriber("nonsense://x").open()


def test_raw_zmq_controller_can_read_frames(tcp_pub: Publisher) -> None:
    """A controller written against docs/protocol.md with plain pyzmq and CONFLATE."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.CONFLATE, 1)
    sock.setsockopt(zmq.SUBSCRIBE, b"cortex\x00")
    sock.connect(tcp_pub.bound_endpoint)
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not sock.poll(20):
            assert time.monotonic() < deadline
            tcp_pub.send(_estimate("cortex", 0, np.array([1.5, 2.5], dtype=np.float32)))
        frame = sock.recv()
        nul = frame.index(b"\x00")
        assert frame[:nul] == b"cortex"
        header = frame[nul + 1 : nul + 41]
        assert header[:4] == b"RTDC"
        values = np.frombuffer(frame[nul + 41 :], dtype="<f4")
        np.testing.assert_array_equal(values, [1.5, 2.5])
    finally:
        sock.close(linger=0)
