"""The publisher reads its subscription changes off the send path (real ZeroMQ on ipc://).

Reading them is a ZeroMQ call of its own, as costly as a send after an idle gap, so the daemon
reads them in housekeeping (``poll_subscriptions``) and ``send`` reads them only when nobody has
for ``SEND_POLL_S``. Every wait has a deadline; nothing is timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import zmq

import rtdecode.sinks.zmq_pub as zmq_pub
from rtdecode.sinks.zmq_pub import SUBSCRIPTION_POLL_S, Publisher


@contextmanager
def _subscriber(endpoint: str, topic: bytes) -> Iterator[zmq.Socket]:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close()


def _until(cond: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(SUBSCRIPTION_POLL_S)


def _polled(pub: Publisher) -> int:
    pub.poll_subscriptions()
    return pub.subscriptions


def test_poll_reads_subscriptions_and_send_leaves_them(ipc_endpoint: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zmq_pub, "SEND_POLL_S", 1e9)  # send never falls back to reading them
    with Publisher(ipc_endpoint) as pub, _subscriber(pub.bound_endpoint, b"a"):
        _until(lambda: _polled(pub) == 1, "poll_subscriptions never saw the first subscriber")
        with _subscriber(pub.bound_endpoint, b"b"):
            time.sleep(0.3)  # the second subscription reaches the XPUB socket meanwhile
            for _ in range(20):
                assert pub.send(b"a\x00payload")
            assert pub.subscriptions == 1  # send did not read the socket's subscription messages
            _until(lambda: _polled(pub) == 2, "poll_subscriptions never saw the second subscriber")
        assert pub.no_subscriber == 0  # every send went to topic a, which had a subscriber


def test_send_reads_them_when_nobody_polls(ipc_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zmq_pub, "SEND_POLL_S", 0.0)
    with Publisher(ipc_endpoint) as pub, _subscriber(pub.bound_endpoint, b""):
        _until(lambda: pub.send(b"probe\x00") and pub.subscriptions == 1,
               "send never read the subscription")
