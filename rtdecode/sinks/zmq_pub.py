"""ZeroMQ PUB socket that publishes rtdecode frames without ever blocking.

Loopback endpoints (``ipc://``, ``inproc://``, ``tcp://127.x.x.x``, ``tcp://localhost``,
``tcp://[::1]``) are bound as they are; any other address exposes the decoder output
to the network and needs ``allow_remote=True`` (config field ``sink.allow_remote``).

Drops: a ZeroMQ PUB socket silently discards a message for a subscriber whose queue
is full (high-water mark), so one stuck subscriber never delays the others. Such
per-subscriber losses are visible to the subscriber as gaps in ``seq``. With
``nodrop=True`` (``ZMQ_XPUB_NODROP``) the socket refuses the message instead; the
refusal is counted in :attr:`Publisher.dropped` — but then one stuck subscriber stops
delivery to every subscriber, so use it only with a single, trusted subscriber.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket as _socket
import time
from types import TracebackType

import zmq

from rtdecode.errors import SinkError

logger = logging.getLogger(__name__)

__all__ = ["Publisher", "check_endpoint", "is_loopback_endpoint", "endpoint_host"]

_LOCAL_SCHEMES = ("ipc://", "inproc://")
_FIX_REMOTE = (
    "bind a loopback endpoint such as tcp://127.0.0.1:5555 or ipc:///run/rtdecode/out.sock, "
    "or set sink.allow_remote = true in the config to expose the output on purpose"
)


def endpoint_host(endpoint: str) -> str | None:
    """Return the host part of a ``tcp://`` endpoint, or None for other transports.

    Parameters
    ----------
    endpoint : str
        ZeroMQ endpoint, e.g. ``tcp://127.0.0.1:5555`` or ``tcp://[::1]:*``.

    Returns
    -------
    str or None
        Host without brackets (``"127.0.0.1"``, ``"::1"``, ``"*"``); None when the
        endpoint is not TCP.

    Raises
    ------
    SinkError
        If a ``tcp://`` endpoint has no ``host:port`` form.
    """
    if not endpoint.startswith("tcp://"):
        return None
    rest = endpoint[len("tcp://") :]
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0 or not rest[close + 1 :].startswith(":") or len(rest) <= close + 2:
            raise SinkError(
                f"endpoint {endpoint!r} is not tcp://[IPv6]:PORT",
                "write an IPv6 endpoint as tcp://[::1]:5555",
            )
        return rest[1:close]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port:
        raise SinkError(
            f"endpoint {endpoint!r} has no host:port part",
            "write a TCP endpoint as tcp://127.0.0.1:5555 (or tcp://127.0.0.1:* for any port)",
        )
    return host


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether binding ``endpoint`` stays on this machine.

    Parameters
    ----------
    endpoint : str
        ZeroMQ endpoint.

    Returns
    -------
    bool
        True for ``ipc://``, ``inproc://`` and TCP on ``localhost``, ``127.0.0.0/8`` or
        ``::1``; False for every other host (``*``, ``0.0.0.0``, an interface name, a
        LAN address) and every other transport.
    """
    if endpoint.startswith(_LOCAL_SCHEMES):
        return True
    host = endpoint_host(endpoint)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback


def check_endpoint(endpoint: str, *, allow_remote: bool = False) -> None:
    """Check that ``endpoint`` is well formed and loopback unless remote is allowed.

    Parameters
    ----------
    endpoint : str
        ZeroMQ endpoint to bind.
    allow_remote : bool, optional
        Allow non-loopback addresses (config field ``sink.allow_remote``).

    Raises
    ------
    SinkError
        If the endpoint has no transport, an empty address, or is not loopback while
        ``allow_remote`` is False.
    """
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise SinkError(
            f"endpoint {endpoint!r} is not a ZeroMQ endpoint (transport://address)",
            "use e.g. tcp://127.0.0.1:5555 or ipc:///tmp/rtdecode.sock",
        )
    scheme, _, address = endpoint.partition("://")
    if not address:
        raise SinkError(
            f"endpoint {endpoint!r} has an empty address",
            "use e.g. tcp://127.0.0.1:5555 or ipc:///tmp/rtdecode.sock",
        )
    if is_loopback_endpoint(endpoint):
        return
    if not allow_remote:
        raise SinkError(
            f"endpoint {endpoint!r} is not a loopback address; binding it would publish "
            "the decoder output to the network and sink.allow_remote is false",
            _FIX_REMOTE,
        )
    logger.warning("binding non-loopback endpoint %s (sink.allow_remote = true)", endpoint)


def _ipc_accepts(path: str) -> bool:
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return False  # stale file (ECONNREFUSED), gone, or not a socket
    finally:
        probe.close()
    return True


def _ipc_in_use(endpoint: str, *, grace_s: float = 0.5) -> bool:
    """True when an ipc:// path exists and a live listener accepts connections on it.

    libzmq would silently take over the path of a running publisher, so this is
    checked before binding. A socket closed a moment ago in this process may still
    be listening (libzmq closes it in a background thread), so a live listener is
    probed again for up to ``grace_s`` seconds before it counts as in use.
    """
    path = endpoint[len("ipc://") :]
    if not path or path.startswith("@"):
        return False
    deadline = time.monotonic() + grace_s
    while os.path.exists(path) and _ipc_accepts(path):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


class Publisher:
    """Non-blocking ZeroMQ PUB socket for rtdecode frames.

    Parameters
    ----------
    endpoint : str
        Endpoint to bind, e.g. ``tcp://127.0.0.1:5555``, ``tcp://127.0.0.1:*`` (any
        free port, see :attr:`bound_endpoint`) or ``ipc:///run/rtdecode/out.sock``.
    allow_remote : bool, optional
        Allow a non-loopback bind (config field ``sink.allow_remote``).
    sndhwm : int, optional
        Send high-water mark per subscriber, messages (>= 1).
    linger_ms : int, optional
        How long ``close()`` may wait to flush queued messages, ms (>= 0).
    nodrop : bool, optional
        Set ``ZMQ_XPUB_NODROP``: a full subscriber queue makes :meth:`send` return
        False and count a drop instead of discarding silently. Stalls every
        subscriber when one is stuck; off by default.

    Raises
    ------
    SinkError
        If the endpoint is malformed or not loopback without ``allow_remote``, or an
        option is out of range. The constructor does no I/O.

    Attributes
    ----------
    sent : int
        Messages accepted by the socket.
    dropped : int
        Messages the socket refused (queue full with ``nodrop``).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        allow_remote: bool = False,
        sndhwm: int = 1000,
        linger_ms: int = 0,
        nodrop: bool = False,
    ) -> None:
        check_endpoint(endpoint, allow_remote=allow_remote)
        if isinstance(sndhwm, bool) or not isinstance(sndhwm, int) or sndhwm < 1:
            raise SinkError(
                f"sndhwm is {sndhwm!r}; expected an int >= 1 (0 would be an unbounded queue)",
                "set sink.sndhwm to a positive number of messages, e.g. 1000",
            )
        if isinstance(linger_ms, bool) or not isinstance(linger_ms, int) or linger_ms < 0:
            raise SinkError(
                f"linger_ms is {linger_ms!r}; expected an int >= 0 "
                "(-1 would block close() forever)",
                "set sink.linger_ms to 0 or a few hundred ms",
            )
        self.endpoint = endpoint
        self.allow_remote = bool(allow_remote)
        self.sndhwm = sndhwm
        self.linger_ms = linger_ms
        self.nodrop = bool(nodrop)
        self.sent = 0
        self.dropped = 0
        self._socket: zmq.Socket | None = None
        self._bound_endpoint: str | None = None

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._socket is not None

    @property
    def bound_endpoint(self) -> str:
        """Endpoint actually bound (resolved port for ``tcp://127.0.0.1:*``).

        Raises
        ------
        SinkError
            If the publisher is not open.
        """
        if self._bound_endpoint is None:
            raise SinkError(
                f"publisher for {self.endpoint!r} is not open; it has no bound endpoint",
                "call open() (or use 'with Publisher(...)') first",
            )
        return self._bound_endpoint

    def open(self) -> Publisher:
        """Create the PUB socket, set its options and bind it.

        Uses the process-wide ``zmq.Context.instance()``, so ``inproc://`` subscribers
        in the same process can connect.

        Returns
        -------
        Publisher
            ``self``. Calling ``open()`` on an open publisher does nothing.

        Raises
        ------
        SinkError
            If the endpoint cannot be bound (address in use, ipc path held by another
            process, bad address, missing directory).
        """
        if self._socket is not None:
            return self
        endpoint = self.endpoint
        if endpoint.startswith("ipc://") and _ipc_in_use(endpoint):
            raise SinkError(
                f"cannot bind {endpoint!r}: another running process is listening on this "
                "ipc path (binding would steal it)",
                "stop the other rtdecode instance or choose another sink.endpoint",
            )
        sock: zmq.Socket = zmq.Context.instance().socket(zmq.PUB)
        try:
            sock.setsockopt(zmq.SNDHWM, self.sndhwm)
            sock.setsockopt(zmq.LINGER, self.linger_ms)
            if self.nodrop:
                sock.setsockopt(zmq.XPUB_NODROP, 1)
            host = endpoint_host(endpoint)
            if host is not None and ":" in host:
                sock.setsockopt(zmq.IPV6, 1)
            sock.bind(endpoint)
            bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            if exc.errno == errno.EADDRINUSE:
                fix = "stop the program using this port or choose another sink.endpoint"
                what = f"cannot bind {endpoint!r}: address already in use"
            else:
                fix = (
                    "check sink.endpoint (e.g. tcp://127.0.0.1:5555, ipc:///tmp/rtdecode.sock; "
                    "the ipc directory must exist)"
                )
                what = f"cannot bind {endpoint!r}: {exc.strerror}"
            raise SinkError(what, fix) from exc
        self._socket = sock
        self._bound_endpoint = bound
        logger.info("publishing on %s (sndhwm=%d, nodrop=%s)", bound, self.sndhwm, self.nodrop)
        return self

    def send(self, frame: bytes | bytearray | memoryview) -> bool:
        """Queue one frame without blocking.

        Parameters
        ----------
        frame : bytes-like
            One complete frame (e.g. from ``EstimateEncoder.encode``); copied by
            ZeroMQ, so the caller may reuse its buffer right after.

        Returns
        -------
        bool
            True if the socket accepted the frame; False if it refused it (counted in
            :attr:`dropped`). Never blocks.

        Raises
        ------
        SinkError
            If the publisher is not open or the socket failed.
        """
        sock = self._socket
        if sock is None:
            raise SinkError(
                f"publisher for {self.endpoint!r} is not open",
                "call open() (or use 'with Publisher(...)') before send()",
            )
        try:
            sock.send(frame, zmq.NOBLOCK, copy=True)
        except zmq.Again:
            self.dropped += 1
            return False
        except zmq.ZMQError as exc:
            raise SinkError(
                f"send on {self._bound_endpoint!r} failed: {exc.strerror}",
                "restart the service; report this if it repeats",
            ) from exc
        self.sent += 1
        return True

    def close(self) -> None:
        """Close the socket (idempotent). Queued messages get ``linger_ms`` to leave."""
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close(linger=self.linger_ms)
            logger.info(
                "closed publisher %s (sent=%d, dropped=%d)",
                self._bound_endpoint,
                self.sent,
                self.dropped,
            )
        self._bound_endpoint = None

    def __enter__(self) -> Publisher:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._bound_endpoint if self._socket is not None else "closed"
        return f"Publisher({self.endpoint!r}, {state}, sent={self.sent}, dropped={self.dropped})"
