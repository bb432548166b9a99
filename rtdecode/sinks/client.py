"""Reference Python subscriber for the rtdecode output stream.

A controller (or ``rtdecode listen``) uses :class:`Subscriber` to receive decoded
:class:`~rtdecode.sinks.protocol.Message` objects with per-topic statistics: received
count, lost messages (gaps in ``seq``), publisher restarts (``seq`` going backwards),
age of the values and receive rate. Malformed frames are counted and logged once,
never raised, so a controller keeps running.

Example
-------
>>> with Subscriber("tcp://127.0.0.1:5555", topics=["cortex"]) as sub:  # doctest: +SKIP
...     msg = sub.recv(timeout_s=0.1)
...     if msg is not None and msg.is_estimate:
...         command = msg.values
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
import uuid
from collections import deque
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import parse_monitor_message

from rtdecode.errors import ProtocolError, SinkError
from rtdecode.lsl import pylsl
from rtdecode.resource import Resource
from rtdecode.sinks import curve
from rtdecode.sinks.protocol import Message, decode, encode_topic, flag_names

logger = logging.getLogger(__name__)

__all__ = ["Subscriber", "TopicStats", "add_curve_arguments", "curve_kwargs"]

#: Receive records kept per topic for windowed age / rate statistics.
_HISTORY = 8192
#: Publisher restarts logged per topic; later ones are only counted.
_RESTARTS_LOGGED = 3
#: Socket-monitor events the subscriber reads (security handshake outcome).
_MONITOR_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def _handshake_error(event: int, value: int, client_uses_curve: bool) -> str:
    """Why a handshake failed, from the monitor event and whether this client uses CURVE.

    A client without CURVE that meets a CURVE publisher sees either a protocol error or a
    failure without detail (libzmq reports whichever it detects first), so the mechanism
    mismatch is named whenever this client does not use CURVE.
    """
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (
            f"the publisher refused this client's CURVE key (ZAP status {value}): its public "
            "key is not in the publisher's sink.curve_clients directory"
        )
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL or not client_uses_curve:
        return (
            "security mechanism mismatch: the publisher uses CURVE and this client does not "
            "(pass the server public key), or the other way round"
        )
    return (
        "CURVE handshake failed: the server public key given to this client does not match "
        "the publisher's key (or the publisher does not use CURVE)"
    )


def add_curve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--server-key`` and ``--client-key`` (CURVE) options to a command.

    Used by ``rtdecode listen`` and ``rtdecode check``; read them back with
    :func:`curve_kwargs`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    group = parser.add_argument_group("CURVE encryption (publishers with sink.curve_secret_key)")
    group.add_argument(
        "--server-key",
        metavar="FILE",
        default=None,
        help="the publisher's public certificate (NAME.key from `rtdecode keygen`) or its "
        "40-character Z85 public key; enables CURVE",
    )
    group.add_argument(
        "--client-key",
        metavar="FILE",
        default=None,
        help="this client's secret certificate (NAME.key_secret); its NAME.key must be in the "
        "publisher's sink.curve_clients directory. Default with --server-key: a throw-away "
        "key pair (accepted only with sink.curve_allow_any)",
    )


def curve_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Subscriber keyword arguments from the options of :func:`add_curve_arguments`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (missing attributes count as not given).

    Returns
    -------
    dict
        ``curve_server_key`` and ``curve_secret_key`` for :class:`Subscriber`.
    """
    return {
        "curve_server_key": getattr(args, "server_key", None),
        "curve_secret_key": getattr(args, "client_key", None),
    }


class TopicStats:
    """Running statistics of one topic (updated by :meth:`Subscriber.recv`).

    Attributes
    ----------
    received : int
        Messages received.
    lost : int
        Messages missing between received ones (sum of ``seq`` gaps). With
        ``conflate=True`` this counts the messages the subscriber skipped on purpose.
    restarts : int
        Times ``seq`` went backwards or repeated (publisher restarted).
    last : Message or None
        Latest message.
    age_s : float
        Age of the latest value at receive, ``pylsl.local_clock() - t_source``, s
        (NaN for status messages without ``t_source``).
    first_recv : float
        ``local_clock()`` of the first receive, s.
    """

    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self.restarts = 0
        self.last: Message | None = None
        self.age_s = math.nan
        self.first_recv = math.nan
        self._history: deque[tuple[float, float]] = deque(maxlen=_HISTORY)

    def update(self, msg: Message, t_recv: float) -> None:
        """Account for one received message.

        Parameters
        ----------
        msg : Message
            The decoded message.
        t_recv : float
            ``pylsl.local_clock()`` at receive, s.
        """
        prev = self.last
        if prev is not None:
            if msg.seq > prev.seq:
                self.lost += msg.seq - prev.seq - 1
            else:
                self.restarts += 1
                if self.restarts <= _RESTARTS_LOGGED:
                    logger.warning(
                        "topic %r: seq went from %d to %d; publisher restarted%s",
                        msg.topic,
                        prev.seq,
                        msg.seq,
                        " (further restarts are only counted)"
                        if self.restarts == _RESTARTS_LOGGED
                        else "",
                    )
        else:
            self.first_recv = t_recv
        self.received += 1
        self.last = msg
        self.age_s = t_recv - msg.t_source
        self._history.append((t_recv, self.age_s))

    def summary(self, now: float, window_s: float = 1.0) -> dict[str, Any]:
        """Statistics as a dict.

        Parameters
        ----------
        now : float
            ``pylsl.local_clock()``, s.
        window_s : float, optional
            Window for the rate and age percentiles, s.

        Returns
        -------
        dict
            ``received``, ``lost``, ``restarts``, ``seq`` (last), ``flags`` (names of
            the last flags), ``age_s`` (last), ``age_p50_s`` / ``age_max_s`` (over the
            window, NaN when empty), ``rate_hz`` (over the window), ``last`` (Message).
        """
        start = now - window_s
        records = [r for r in self._history if r[0] >= start]
        ages = np.array([a for _, a in records if not math.isnan(a)], dtype=np.float64)
        n = len(records)
        if n == len(self._history):
            # the history does not reach back a full window (start-up, or more than
            # _HISTORY messages per window): use the span of the records themselves
            span = records[-1][0] - records[0][0] if n >= 2 else 0.0
            rate = (n - 1) / span if span > 0 else 0.0
        else:
            rate = n / window_s
        last = self.last
        return {
            "received": self.received,
            "lost": self.lost,
            "restarts": self.restarts,
            "seq": None if last is None else last.seq,
            "flags": [] if last is None else flag_names(last.flags),
            "age_s": self.age_s,
            "age_p50_s": float(np.median(ages)) if ages.size else math.nan,
            "age_max_s": float(ages.max()) if ages.size else math.nan,
            "rate_hz": rate,
            "last": last,
        }


class Subscriber(Resource):
    """ZeroMQ SUB socket that decodes rtdecode frames and keeps statistics.

    Parameters
    ----------
    endpoint : str
        Publisher endpoint to connect to, e.g. ``tcp://127.0.0.1:5555``.
    topics : list of str or None, optional
        Exact topics to receive (subscribes to ``topic + b"\\x00"``, so ``cortex``
        does not match ``cortex2``); None receives every topic, status included.
    conflate : bool, optional
        Keep only the latest message (``ZMQ_CONFLATE``). The queue is shared by all
        subscribed topics, so use one conflating subscriber per topic.
    rcvhwm : int, optional
        Receive high-water mark, messages.
    curve_server_key : path, str or bytes, optional
        The publisher's CURVE public key: its ``NAME.key`` certificate file or the
        40-character Z85 key. Enables CURVE.
    curve_secret_key : path, optional
        This client's secret certificate (``NAME.key_secret``). Default with
        ``curve_server_key``: a throw-away key pair, which only a publisher with
        ``sink.curve_allow_any`` accepts.

    Raises
    ------
    SinkError
        If ``topics`` is an empty list or contains an invalid topic, or a client key is
        given without a server key. The constructor does no I/O (keys are read by
        :meth:`open`).

    Attributes
    ----------
    malformed : int
        Frames that could not be decoded.
    handshake_failures : int
        Failed security handshakes with the publisher (seen when ``recv`` times out).
    handshake_error : str or None
        Why the latest handshake failed (None when none failed, or after a success).
    """

    def __init__(
        self,
        endpoint: str,
        topics: list[str] | None = None,
        conflate: bool = False,
        rcvhwm: int = 100000,
        curve_server_key: str | os.PathLike[str] | bytes | None = None,
        curve_secret_key: str | os.PathLike[str] | None = None,
    ) -> None:
        if topics is not None:
            if isinstance(topics, str):
                topics = [topics]
            if len(topics) == 0:
                raise SinkError(
                    "topics is an empty list; the subscriber would receive nothing",
                    "pass topic names, or topics=None to receive every topic",
                )
            try:
                self._prefixes = [encode_topic(t) + b"\x00" for t in topics]
            except ProtocolError as exc:
                raise SinkError(f"invalid subscription: {exc.what}", exc.fix) from None
        else:
            self._prefixes = [b""]
        if isinstance(rcvhwm, bool) or not isinstance(rcvhwm, int) or rcvhwm < 1:
            raise SinkError(
                f"rcvhwm is {rcvhwm!r}; expected an int >= 1",
                "pass a positive number of messages",
            )
        if curve_secret_key is not None and curve_server_key is None:
            raise SinkError(
                "a CURVE client key was given without the publisher's public key",
                "pass the server's NAME.key as well (--server-key / curve_server_key)",
            )
        if curve_server_key is not None:
            curve.require_curve("--server-key")
        self.curve_server_key = curve_server_key
        self.curve_secret_key = curve_secret_key
        self.handshake_failures = 0
        self.handshake_error: str | None = None
        self._monitor: zmq.Socket | None = None
        self._monitor_addr = ""
        self.endpoint = endpoint
        self.topics = None if topics is None else list(topics)
        self.conflate = bool(conflate)
        self.rcvhwm = rcvhwm
        self.malformed = 0
        self._topic_stats: dict[str, TopicStats] = {}
        self._socket: zmq.Socket | None = None
        self._malformed_logged = False

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._socket is not None

    def open(self) -> Subscriber:
        """Create the SUB socket, subscribe and connect.

        Returns
        -------
        Subscriber
            ``self``; does nothing when already open.

        Raises
        ------
        SinkError
            If the endpoint is invalid.
        """
        if self._socket is not None:
            return self
        keys: tuple[bytes, bytes, bytes] | None = None
        if self.curve_server_key is not None:
            server = curve.load_public_key(self.curve_server_key, "--server-key")
            if self.curve_secret_key is not None:
                public, secret = curve.load_secret_certificate(
                    self.curve_secret_key, "--client-key"
                )
            else:
                public, secret = zmq.curve_keypair()
            keys = (server, public, secret)
        ctx: zmq.Context = zmq.Context.instance()
        sock: zmq.Socket = ctx.socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            if keys is not None:
                sock.setsockopt(zmq.CURVE_SERVERKEY, keys[0])
                sock.setsockopt(zmq.CURVE_PUBLICKEY, keys[1])
                sock.setsockopt(zmq.CURVE_SECRETKEY, keys[2])
            self._monitor_addr = f"inproc://rtdecode-sub-monitor-{uuid.uuid4().hex}"
            sock.monitor(self._monitor_addr, _MONITOR_EVENTS)
            monitor = ctx.socket(zmq.PAIR)
            monitor.setsockopt(zmq.LINGER, 0)
            monitor.connect(self._monitor_addr)
            self._monitor = monitor
            sock.setsockopt(zmq.RCVHWM, self.rcvhwm)
            if self.conflate:
                sock.setsockopt(zmq.CONFLATE, 1)
            if "://[" in self.endpoint:
                sock.setsockopt(zmq.IPV6, 1)
            for prefix in self._prefixes:
                sock.setsockopt(zmq.SUBSCRIBE, prefix)
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self._close_monitor(sock)
            sock.close(linger=0)
            raise SinkError(
                f"cannot connect to {self.endpoint!r}: {exc.strerror}",
                "pass the publisher's endpoint, e.g. tcp://127.0.0.1:5555 or ipc:///path",
            ) from exc
        self._socket = sock
        logger.info(
            "subscribed to %s topics=%s conflate=%s curve=%s",
            self.endpoint,
            "all" if self.topics is None else self.topics,
            self.conflate,
            keys is not None,
        )
        return self

    def _close_monitor(self, sock: zmq.Socket) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:  # pragma: no cover - socket already closing
                pass
            monitor.close(linger=0)

    def check_handshake(self) -> str | None:
        """Read the security-handshake events so far (never blocks).

        Returns
        -------
        str or None
            Why the latest handshake failed, or None (no failure, or a later success).
            The first failure is logged; :attr:`handshake_failures` counts them all.
        """
        monitor = self._monitor
        while monitor is not None:
            try:
                parts = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except zmq.ZMQError:  # pragma: no cover - closing
                break
            try:
                event = parse_monitor_message(parts)
            except Exception:  # pragma: no cover - malformed monitor frame  # noqa: BLE001
                continue
            kind = int(event["event"])
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshake_error = None
                continue
            self.handshake_failures += 1
            self.handshake_error = _handshake_error(kind, int(event["value"]),
                                                   self.curve_server_key is not None)
            if self.handshake_failures == 1:
                logger.warning(
                    "cannot subscribe to %s: %s (further failures are only counted)",
                    self.endpoint,
                    self.handshake_error,
                )
        return self.handshake_error

    def recv_frame(self, timeout_s: float) -> bytes | None:
        """Wait up to ``timeout_s`` for the next frame, undecoded (any kind, even malformed).

        For consumers that keep or show frames as they are (the monitor); a controller
        uses :meth:`recv`. Never blocks longer than ``timeout_s``.

        Raises
        ------
        SinkError
            If the subscriber is not open.
        """
        sock = self._socket
        if sock is None:
            raise SinkError(
                f"subscriber for {self.endpoint!r} is not open",
                "call open() (or use 'with Subscriber(...)') before recv()",
            )
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        while True:
            remaining_ms = max(0, math.ceil((deadline - time.monotonic()) * 1000.0))
            if not sock.poll(remaining_ms, zmq.POLLIN):
                self.check_handshake()
                return None
            try:
                return bytes(sock.recv(zmq.NOBLOCK))
            except zmq.Again:
                continue

    def recv(self, timeout_s: float) -> Message | None:
        """Wait up to ``timeout_s`` for the next well-formed message.

        Parameters
        ----------
        timeout_s : float
            Longest wait, s (0 polls without waiting). Never blocks longer.

        Returns
        -------
        Message or None
            The message, or None when none arrived in time. Malformed frames are
            counted in :attr:`malformed`, logged once and skipped.

        Raises
        ------
        SinkError
            If the subscriber is not open.
        """
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame is None:
                return None
            t_recv = pylsl.local_clock()
            try:
                msg = decode(frame)
            except ProtocolError as exc:
                self.malformed += 1
                if not self._malformed_logged:
                    self._malformed_logged = True
                    logger.warning(
                        "malformed frame from %s (further ones are only counted): %s",
                        self.endpoint,
                        exc,
                    )
                if time.monotonic() >= deadline:
                    return None
                continue
            stats = self._topic_stats.get(msg.topic)
            if stats is None:
                stats = self._topic_stats[msg.topic] = TopicStats()
            stats.update(msg, t_recv)
            return msg

    def topic_stats(self, topic: str) -> TopicStats | None:
        """Live statistics object of one topic (None before its first message)."""
        return self._topic_stats.get(topic)

    def stats(self, window_s: float = 1.0) -> dict[str, dict[str, Any]]:
        """Statistics of every topic seen so far.

        Parameters
        ----------
        window_s : float, optional
            Window for rates and age percentiles, s.

        Returns
        -------
        dict
            ``{topic: TopicStats.summary(...)}`` sorted by topic; malformed frames
            (which have no reliable topic) are counted in :attr:`malformed`.
        """
        now = pylsl.local_clock()
        return {topic: s.summary(now, window_s) for topic, s in sorted(self._topic_stats.items())}

    def close(self) -> None:
        """Close the socket (idempotent)."""
        sock, self._socket = self._socket, None
        if sock is not None:
            self._close_monitor(sock)
            sock.close(linger=0)

