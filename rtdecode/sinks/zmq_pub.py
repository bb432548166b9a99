"""ZeroMQ publisher (XPUB socket) that sends rtdecode frames without ever blocking.

Loopback endpoints (``ipc://``, ``inproc://``, ``tcp://127.x.x.x``, ``tcp://localhost``,
``tcp://[::1]``) are bound as they are; any other address (``*``, ``0.0.0.0``, ``[::]``,
a LAN address, a host or interface name, any other transport) exposes the decoder
output to the network and needs ``allow_remote=True`` (config field
``sink.allow_remote``). Optional CURVE encryption and client authentication:
:mod:`rtdecode.sinks.curve`.

Drops, by reason (:attr:`Publisher.drops`):

- ``queue_full``: the socket refused the frame (only with ``nodrop=True``,
  ``ZMQ_XPUB_NODROP``: some subscriber's queue is at its high-water mark). The frame
  then reaches *no* subscriber, so one stuck subscriber stops delivery to all of them;
  use it with a single, trusted subscriber.
- ``no_subscriber``: the frame was sent while nobody subscribed to its topic (ZeroMQ
  discards it). Tracked from the subscriptions the XPUB socket reports, read by
  :meth:`Publisher.poll_subscriptions` (at most every :data:`SUBSCRIPTION_POLL_S`; the
  daemon calls it after a tick's messages are out) and, for a caller that never calls it,
  by :meth:`Publisher.send` when they were last read :data:`SEND_POLL_S` ago or more. Reading
  them is a ZeroMQ call of its own: after an idle gap it costs as much as the send
  (50–80 µs on the development VM), so it stays off the path of a frame that is due.

In the default mode (``nodrop=False``) a subscriber whose queue is full loses messages
*silently for that subscriber only*, so one stuck subscriber never delays the others;
libzmq does not report these losses to the publisher, the subscriber sees them as gaps
in ``seq`` (``Subscriber.stats()[topic]["lost"]``).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import os
import socket as _socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from rtdecode.errors import SinkError
from rtdecode.resource import Resource
from rtdecode.sinks import curve

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

    from rtdecode.config import SinkConfig

logger = logging.getLogger(__name__)

__all__ = [
    "DROP_REASONS",
    "SEND_POLL_S",
    "SUBSCRIPTION_POLL_S",
    "Publisher",
    "check_endpoint",
    "endpoint_host",
    "is_loopback_endpoint",
]

#: Reasons a frame is counted as dropped by the publisher (keys of ``Publisher.drops``).
DROP_REASONS = ("queue_full", "no_subscriber")
#: How often ``poll_subscriptions`` reads the subscription changes of the XPUB socket, s.
SUBSCRIPTION_POLL_S = 0.01
#: ``send`` reads them itself when nothing has for this long, s.
SEND_POLL_S = 0.25

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


class Publisher(Resource):
    """Non-blocking ZeroMQ publisher (XPUB socket) for rtdecode frames.

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
        False and count a ``queue_full`` drop instead of discarding silently. Stalls
        every subscriber when one is stuck; off by default.
    curve_secret_key : path, optional
        Server secret certificate (``NAME.key_secret`` from ``rtdecode keygen``);
        enables CURVE encryption. Needs exactly one of ``curve_clients`` or
        ``curve_allow_any``.
    curve_clients : path, optional
        Directory of authorized client public certificates (``*.key``).
    curve_allow_any : bool, optional
        With CURVE, accept any client that knows the server public key.

    Raises
    ------
    SinkError
        If the endpoint is malformed or not loopback without ``allow_remote``, an
        option is out of range, or the CURVE options are inconsistent or CURVE is not
        available. The constructor does no I/O (key files are read by :meth:`open`).

    Attributes
    ----------
    sent : int
        Messages accepted by the socket.
    dropped : int
        Messages the socket refused (``queue_full``, only with ``nodrop``).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        allow_remote: bool = False,
        sndhwm: int = 1000,
        linger_ms: int = 0,
        nodrop: bool = False,
        curve_secret_key: str | os.PathLike[str] | None = None,
        curve_clients: str | os.PathLike[str] | None = None,
        curve_allow_any: bool = False,
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
        check_curve_options(curve_secret_key, curve_clients, curve_allow_any)
        self.endpoint = endpoint
        self.allow_remote = bool(allow_remote)
        self.sndhwm = sndhwm
        self.linger_ms = linger_ms
        self.nodrop = bool(nodrop)
        self.curve_secret_key = None if curve_secret_key is None else Path(curve_secret_key)
        self.curve_clients = None if curve_clients is None else Path(curve_clients)
        self.curve_allow_any = bool(curve_allow_any)
        self.sent = 0
        self.dropped = 0
        self.no_subscriber = 0
        self._socket: zmq.Socket | None = None
        self._bound_endpoint: str | None = None
        self._prefixes: set[bytes] = set()
        self._next_sub_poll = 0.0
        self._last_sub_poll = -math.inf
        self._ctx: zmq.Context | None = None
        self._auth: ThreadAuthenticator | None = None
        self._registry: curve.ClientKeyRegistry | None = None
        if not is_loopback_endpoint(endpoint) and self.curve_secret_key is None:
            logger.warning(
                "%s is network-visible and unencrypted: any host that can reach it may "
                "subscribe (set sink.curve_secret_key to require CURVE keys)",
                endpoint,
            )

    @classmethod
    def from_config(cls, sink: SinkConfig) -> Publisher:
        """Build a publisher from the ``[sink]`` config section.

        Parameters
        ----------
        sink : SinkConfig
            Validated ``[sink]`` section.

        Returns
        -------
        Publisher
            Not yet open.
        """
        return cls(
            sink.endpoint,
            allow_remote=sink.allow_remote,
            sndhwm=sink.sndhwm,
            nodrop=sink.nodrop,
            curve_secret_key=sink.curve_secret_key,
            curve_clients=sink.curve_clients,
            curve_allow_any=sink.curve_allow_any,
        )

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._socket is not None

    @property
    def curve_mode(self) -> str:
        """``"off"``, ``"clients"`` (authorized list) or ``"any"`` (any client with the server key)."""
        if self.curve_secret_key is None:
            return "off"
        return "any" if self.curve_allow_any else "clients"

    @property
    def drops(self) -> dict[str, int]:
        """Frames dropped by the publisher, per reason (see the module docstring)."""
        return {"queue_full": self.dropped, "no_subscriber": self.no_subscriber}

    @property
    def subscriptions(self) -> int:
        """Distinct topic prefixes that at least one subscriber currently holds."""
        return len(self._prefixes)

    def status(self) -> dict[str, Any]:
        """State of the publisher for the status message (no key material, no paths).

        Returns
        -------
        dict
            ``sent``, ``drops`` (per reason), ``nodrop``, ``sndhwm``, ``subscriptions``,
            ``curve`` (``off`` / ``clients`` / ``any``) and, with CURVE,
            ``auth_accepted`` / ``auth_denied`` (handshakes since open).
        """
        out: dict[str, Any] = {
            "sent": self.sent,
            "drops": self.drops,
            "nodrop": self.nodrop,
            "sndhwm": self.sndhwm,
            "subscriptions": self.subscriptions,
            "curve": self.curve_mode,
        }
        if self._registry is not None:
            out["auth_accepted"] = self._registry.accepted
            out["auth_denied"] = self._registry.denied
        return out

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

    def _setup_curve(self, sock: zmq.Socket) -> None:
        assert self.curve_secret_key is not None and self._ctx is not None
        public, secret = curve.load_secret_certificate(
            self.curve_secret_key, "sink.curve_secret_key"
        )
        keys = (
            None
            if self.curve_allow_any or self.curve_clients is None
            else curve.load_client_keys(self.curve_clients, "sink.curve_clients")
        )
        self._registry = curve.ClientKeyRegistry(keys)
        self._auth = curve.start_authenticator(self._ctx, self._registry)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.ZAP_DOMAIN, curve.ZAP_DOMAIN)

    def _teardown(self, sock: zmq.Socket | None, linger_ms: int) -> None:
        if sock is not None:
            sock.close(linger=linger_ms)
        auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.term()

    def open(self) -> Publisher:
        """Create the XPUB socket, set its options (and CURVE keys) and bind it.

        Without CURVE it uses the process-wide ``zmq.Context.instance()``, so
        ``inproc://`` subscribers in the same process can connect. With CURVE it uses
        a private context with its own ZAP handler thread.

        Returns
        -------
        Publisher
            ``self``. Calling ``open()`` on an open publisher does nothing.

        Raises
        ------
        SinkError
            If the endpoint cannot be bound (address in use, ipc path held by another
            process, bad address, missing directory) or a CURVE key file is missing,
            unreadable or invalid.
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
        if self.curve_secret_key is not None:
            self._ctx = zmq.Context()
            ctx = self._ctx
        else:
            ctx = zmq.Context.instance()
        sock: zmq.Socket = ctx.socket(zmq.XPUB)
        try:
            bound = self._configure_and_bind(sock, endpoint)
        except zmq.ZMQError as exc:
            self._teardown(sock, 0)
            raise _bind_error(endpoint, exc) from exc
        except BaseException:
            self._teardown(sock, 0)
            raise
        self._socket = sock
        self._bound_endpoint = bound
        self._prefixes.clear()
        self._next_sub_poll, self._last_sub_poll = 0.0, -math.inf
        logger.info(
            "publishing on %s (sndhwm=%d, nodrop=%s, curve=%s)",
            bound,
            self.sndhwm,
            self.nodrop,
            self.curve_mode,
        )
        return self

    def _configure_and_bind(self, sock: zmq.Socket, endpoint: str) -> str:
        """Set the socket's options (and CURVE keys), bind it; returns the bound endpoint."""
        sock.setsockopt(zmq.SNDHWM, self.sndhwm)
        sock.setsockopt(zmq.LINGER, self.linger_ms)
        if self.nodrop:
            sock.setsockopt(zmq.XPUB_NODROP, 1)
        if self.curve_secret_key is not None:
            self._setup_curve(sock)
        host = endpoint_host(endpoint)
        if host is not None and ":" in host:
            sock.setsockopt(zmq.IPV6, 1)
        sock.bind(endpoint)
        return sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def poll_subscriptions(self, now: float | None = None) -> None:
        """Read the subscription changes, at most every :data:`SUBSCRIPTION_POLL_S` (never blocks).

        Parameters
        ----------
        now : float, optional
            ``time.monotonic()`` if the caller has it, s.
        """
        sock = self._socket
        now = time.monotonic() if now is None else now
        if sock is None or now < self._next_sub_poll:
            return
        self._next_sub_poll = now + SUBSCRIPTION_POLL_S
        self._last_sub_poll = now
        self._poll_subscriptions(sock)

    def _poll_subscriptions(self, sock: zmq.Socket) -> None:
        """Apply the subscription changes the XPUB socket reports (never blocks)."""
        while True:
            try:
                msg = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:  # pragma: no cover - socket closing
                return
            if msg[:1] == b"\x01":
                self._prefixes.add(msg[1:])
            elif msg[:1] == b"\x00":
                self._prefixes.discard(msg[1:])

    def _subscribed(self, frame: bytes | bytearray | memoryview) -> bool:
        prefixes = self._prefixes
        if not prefixes:
            return False
        if b"" in prefixes:
            return True
        return any(frame[: len(p)] == p for p in prefixes)

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
            True if the socket accepted the frame (it may still reach nobody: see
            :attr:`drops` ``no_subscriber``); False if it refused it (``queue_full``,
            counted in :attr:`dropped`). Never blocks.

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
        now = time.monotonic()
        if now - self._last_sub_poll >= SEND_POLL_S:  # nobody polls them: read them here
            self._next_sub_poll = 0.0
            self.poll_subscriptions(now)
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
        if not self._subscribed(frame):
            self.no_subscriber += 1
        return True

    def close(self) -> None:
        """Close the socket (idempotent). Queued messages get ``linger_ms`` to leave."""
        sock, self._socket = self._socket, None
        if sock is not None:
            self._teardown(sock, self.linger_ms)
            logger.info(
                "closed publisher %s (sent=%d, drops=%s)",
                self._bound_endpoint,
                self.sent,
                self.drops,
            )
        self._bound_endpoint = None

    def __repr__(self) -> str:
        state = self._bound_endpoint if self._socket is not None else "closed"
        return (
            f"Publisher({self.endpoint!r}, {state}, sent={self.sent}, drops={self.drops}, "
            f"curve={self.curve_mode})"
        )


def check_curve_options(
    secret_key: str | os.PathLike[str] | None,
    clients: str | os.PathLike[str] | None,
    allow_any: bool,
) -> None:
    """Check that the CURVE options form one explicit mode (no I/O).

    Parameters
    ----------
    secret_key : path or None
        ``sink.curve_secret_key``.
    clients : path or None
        ``sink.curve_clients``.
    allow_any : bool
        ``sink.curve_allow_any``.

    Raises
    ------
    SinkError
        If clients / allow_any are set without a secret key, a secret key has neither
        (or both), or CURVE is not available in this libzmq.
    """
    if secret_key is None:
        if clients is not None or allow_any:
            field = "sink.curve_clients" if clients is not None else "sink.curve_allow_any"
            raise SinkError(
                f"{field} is set but sink.curve_secret_key is not; CURVE needs the server key",
                "set sink.curve_secret_key to the server's NAME.key_secret "
                "(rtdecode keygen DIR --name server), or remove " + field,
            )
        return
    if (clients is None) == (not allow_any):
        raise SinkError(
            "sink.curve_secret_key is set, so say which clients may subscribe: "
            + ("sink.curve_clients and sink.curve_allow_any are both set"
               if clients is not None else "neither sink.curve_clients nor sink.curve_allow_any is set"),
            "set sink.curve_clients to a directory of authorized client NAME.key files, "
            "or sink.curve_allow_any = true (encryption without client authentication) — one of them",
        )
    curve.require_curve("sink.curve_secret_key")


def _bind_error(endpoint: str, exc: zmq.ZMQError) -> SinkError:
    """The error for a failed bind, with its fix (port in use, or a bad address)."""
    if exc.errno == errno.EADDRINUSE:
        return SinkError(f"cannot bind {endpoint!r}: address already in use",
                         "stop the program using this port or choose another sink.endpoint")
    return SinkError(f"cannot bind {endpoint!r}: {exc.strerror}",
                     "check sink.endpoint (e.g. tcp://127.0.0.1:5555, ipc:///tmp/rtdecode.sock; "
                     "the ipc directory must exist)")
