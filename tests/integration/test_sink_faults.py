"""Slow, stuck and absent subscribers never block the publishing loop (real ZeroMQ on loopback).

The sender runs a daemon-like loop in a thread (estimates at full rate plus a status
frame carrying ``Publisher.status()`` every 50 ms); the test asserts that the thread
finishes (join with a generous timeout: a blocked send would never return), that drops
are counted per reason, and that a fast subscriber still gets recent messages. No
assertion on speed; every receive has a timeout.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC, EstimateEncoder, Message, encode_status
from rtdecode.sinks.zmq_pub import SUBSCRIPTION_POLL_S, Publisher

SEND_FOR_S = 2.0
JOIN_TIMEOUT_S = 60.0  # only catches a sender that blocks forever; not a speed bound
RECV_TIMEOUT_S = 2.0


class _Loop(threading.Thread):
    """Daemon-like sending loop: estimates as fast as possible, status every 50 ms."""

    def __init__(self, pub: Publisher, seconds: float = SEND_FOR_S, first_seq: int = 0) -> None:
        super().__init__(daemon=True)
        self.pub, self.seconds, self.seq = pub, seconds, first_seq
        self.first_seq = first_seq
        self.refused = 0
        self.status_seq = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            enc = EstimateEncoder("cortex", 8)
            values = np.zeros(8, dtype=np.float32)
            end = time.monotonic() + self.seconds
            next_status = 0.0
            while (now := time.monotonic()) < end:
                t = pylsl.local_clock()
                values[0] = self.seq
                if not self.pub.send(enc.encode(self.seq, 0, t, t, values)):
                    self.refused += 1
                self.seq += 1
                if now >= next_status:
                    frame = encode_status(STATUS_TOPIC, self.status_seq, t,
                                          {"state": "running", "sink": self.pub.status()})
                    self.pub.send(frame)
                    self.status_seq += 1
                    next_status = now + 0.05
        except BaseException as exc:  # surfaced by _finish
            self.error = exc

    def finish(self) -> None:
        self.join(JOIN_TIMEOUT_S)
        assert not self.is_alive(), "the sending loop blocked"
        assert self.error is None, repr(self.error)


def _stuck_socket(endpoint: str) -> zmq.Socket:
    """A subscriber that connects, subscribes to everything and never reads."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 10)
    sock.setsockopt(zmq.RCVBUF, 4096)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock


def _wait_subscriptions(pub: Publisher, n: int) -> None:
    """Send probes (topic nobody reads) until the publisher sees ``n`` subscriptions."""
    deadline = time.monotonic() + 5.0
    while pub.subscriptions < n:
        assert time.monotonic() < deadline, f"publisher saw {pub.subscriptions} of {n} subscriptions"
        pub.send(b"probe\x00")
        time.sleep(SUBSCRIPTION_POLL_S)


def _drain(sub: Subscriber, quiet_s: float = 0.3) -> list[Message]:
    out = []
    while (msg := sub.recv(timeout_s=quiet_s)) is not None:
        out.append(msg)
    return out


def test_stuck_subscriber_never_blocks_and_fast_subscriber_gets_recent() -> None:
    with Publisher("tcp://127.0.0.1:*", sndhwm=100) as pub:
        stuck = _stuck_socket(pub.bound_endpoint)
        try:
            with Subscriber(pub.bound_endpoint, topics=["cortex", STATUS_TOPIC]) as fast:
                _wait_subscriptions(pub, 3)  # "" (stuck), "cortex\0" and "_status\0" (fast)
                loop = _Loop(pub)
                loop.start()
                statuses: list[Message] = []
                estimates = 0
                while loop.is_alive():
                    msg = fast.recv(timeout_s=0.1)
                    if msg is not None and msg.is_status:
                        statuses.append(msg)
                    elif msg is not None:
                        estimates += 1
                loop.finish()
                # a fast subscriber slowed by the machine may still hold a full queue of the burst:
                # read it out (counted) so its queue has room again, as a reader that keeps up would
                for msg in _drain(fast):
                    if msg.is_status:
                        statuses.append(msg)
                    else:
                        estimates += 1
                # after the burst: a few paced messages, which the fast subscriber must get
                tail = EstimateEncoder("cortex", 8)
                tail_seqs = list(range(loop.seq, loop.seq + 5))
                for seq in tail_seqs:
                    t = pylsl.local_clock()
                    pub.send(tail.encode(seq, 0, t, t, np.full(8, seq, dtype=np.float32)))
                    time.sleep(0.02)
                rest = _drain(fast)
                got_tail = [m.seq for m in rest if m.topic == "cortex" and m.seq in tail_seqs]
                assert got_tail == tail_seqs, "the fast subscriber missed recent messages"
                assert estimates > 0 and statuses, "the fast subscriber got nothing while sending"
                assert statuses[-1].status["sink"]["subscriptions"] == 3
            total = loop.seq - loop.first_seq
            assert loop.refused == 0 and pub.dropped == 0  # default mode never refuses
            # the stuck subscriber lost most of the burst: libzmq dropped for it alone
            received = 0
            while stuck.poll(300):
                stuck.recv()
                received += 1
            assert 0 < received < total
        finally:
            stuck.close(linger=0)


def test_nodrop_mode_counts_queue_full_drops_and_never_blocks() -> None:
    with Publisher("tcp://127.0.0.1:*", sndhwm=10, nodrop=True) as pub:
        stuck = _stuck_socket(pub.bound_endpoint)
        try:
            _wait_subscriptions(pub, 1)
            loop = _Loop(pub, seconds=1.0)
            loop.start()
            loop.finish()
            assert loop.refused > 0
            drops = pub.status()["drops"]
            assert drops["queue_full"] >= loop.refused > 0
            assert pub.status()["nodrop"] is True
        finally:
            stuck.close(linger=0)


def test_no_subscriber_never_blocks_and_counts() -> None:
    with Publisher("tcp://127.0.0.1:*", sndhwm=10) as pub:
        loop = _Loop(pub, seconds=1.0)
        loop.start()
        loop.finish()
        sent = loop.seq + loop.status_seq
        st = pub.status()
        assert st["subscriptions"] == 0 and st["sent"] == sent
        assert st["drops"] == {"queue_full": 0, "no_subscriber": sent}


def test_subscriptions_tracked_and_no_subscriber_counts_per_topic() -> None:
    with Publisher("tcp://127.0.0.1:*") as pub:
        with Subscriber(pub.bound_endpoint, topics=["cortex"]) as sub:
            _wait_subscriptions(pub, 1)
            before = pub.no_subscriber
            t = pylsl.local_clock()
            enc = EstimateEncoder("cortex", 2)
            assert pub.send(enc.encode(0, 0, t, t, np.zeros(2, dtype=np.float32)))
            assert pub.no_subscriber == before  # someone listens to cortex
            assert pub.send(encode_status(STATUS_TOPIC, 0, t, {}))
            assert pub.no_subscriber == before + 1  # nobody listens to _status
            assert sub.recv(timeout_s=RECV_TIMEOUT_S) is not None
        # the subscriber left: its subscription goes away (seen on later sends)
        deadline = time.monotonic() + 5.0
        while pub.subscriptions:
            assert time.monotonic() < deadline, "subscription never removed"
            pub.send(b"probe\x00")
            time.sleep(SUBSCRIPTION_POLL_S)


@pytest.mark.parametrize("endpoint", ["ipc", "inproc"])
def test_stuck_subscriber_other_transports(endpoint: str, tmp_path, unique_name: str) -> None:
    ep = f"ipc://{tmp_path}/out.sock" if endpoint == "ipc" else f"inproc://{unique_name}"
    with Publisher(ep, sndhwm=10) as pub:
        stuck = _stuck_socket(pub.bound_endpoint)
        try:
            _wait_subscriptions(pub, 1)
            loop = _Loop(pub, seconds=0.5)
            loop.start()
            loop.finish()
            assert loop.refused == 0
        finally:
            stuck.close(linger=0)


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://[::]:5555", "tcp://rig.lab:5555",
     "tcp://eth0:5555", "tcp://192.168.1.20:5555", "ws://127.0.0.1:5555"],
)
def test_remote_bind_without_allow_remote_is_a_config_error(endpoint: str) -> None:
    from pathlib import Path

    from rtdecode.config import load_config
    from rtdecode.errors import ConfigError

    model = Path(__file__).resolve().parents[2] / "models" / "cortex_wiener.onnx"
    data = {"source": {"name": "rig"}, "decoders": [{"name": "a", "model": str(model)}],
            "sink": {"endpoint": endpoint}}
    with pytest.raises(ConfigError) as info:
        load_config(data=data, environ={})
    assert info.value.exit_code == 2
    text = str(info.value)
    assert "sink.endpoint" in text and "sink.allow_remote = true" in text and endpoint in text
    data["sink"]["allow_remote"] = True
    assert load_config(data=data, environ={}).sink.allow_remote
