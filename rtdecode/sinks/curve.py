"""ZeroMQ CURVE keys for the output stream: key files, the authorized-client list and the ZAP handler.

CURVE (RFC 26/CurveZMQ) encrypts every frame and authenticates both ends with
Curve25519 key pairs. The publisher holds a **server** key pair; each controller holds
a **client** key pair and knows the server's public key. Keys live in ZeroMQ
certificate files as written by :func:`zmq.auth.create_certificates` (``rtdecode
keygen``): ``NAME.key`` holds the public key only and may be shared, ``NAME.key_secret``
holds both keys and must stay private (mode 0600).

The publisher authorizes clients in one of two explicit modes:

- ``clients``: a directory of client public certificates (``*.key``); only those keys
  may subscribe (read when the publisher opens; restart to apply changes).
- ``any``: any client that knows the server public key may subscribe (encryption, but
  no client authentication).

No function here logs or returns a secret key; errors name the file, never its content.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from rtdecode.errors import SinkError

logger = logging.getLogger(__name__)

__all__ = [
    "ClientKeyRegistry",
    "create_keypair",
    "load_client_keys",
    "load_public_key",
    "load_secret_certificate",
    "require_curve",
    "start_authenticator",
]

#: ZAP domain of the publisher socket (set as ``ZMQ_ZAP_DOMAIN``).
ZAP_DOMAIN = b"rtdecode"
#: Length of a Z85-encoded 32-byte CURVE key, characters.
KEY_Z85_LEN = 40
_FIX_KEYGEN = "create one with `rtdecode keygen DIR --name NAME`"


def require_curve(field: str = "sink.curve_secret_key") -> None:
    """Fail clearly when the installed libzmq has no CURVE support.

    Parameters
    ----------
    field : str, optional
        Config field or option that asked for CURVE (named in the error).

    Raises
    ------
    SinkError
        If ``zmq.has("curve")`` is False.
    """
    if not zmq.has("curve"):
        raise SinkError(
            f"{field} asks for CURVE encryption, but this libzmq {zmq.zmq_version()} "
            f"(pyzmq {zmq.__version__}) was built without CURVE support",
            "install a pyzmq wheel from PyPI (it bundles libzmq with libsodium/tweetnacl), "
            f"or remove {field}",
        )


def _valid_key(key: bytes | None) -> bool:
    if key is None or len(key) != KEY_Z85_LEN:
        return False
    try:
        return len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        return False


def _read_certificate(path: Path, field: str) -> tuple[bytes, bytes | None]:
    try:
        return _read_certificate_checked(path, field)
    except (OSError, ValueError) as exc:  # name too long, NUL byte, I/O error
        raise SinkError(
            f"{field}: cannot read key file {str(path)[:200]!r} ({type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or 'invalid path'})",
            _FIX_KEYGEN,
        ) from None


def _read_certificate_checked(path: Path, field: str) -> tuple[bytes, bytes | None]:
    if not path.exists():
        raise SinkError(f"{field}: key file {path} does not exist", _FIX_KEYGEN)
    if not path.is_file():
        raise SinkError(f"{field}: {path} is not a file", f"point {field} at a certificate file")
    if not os.access(path, os.R_OK):
        raise SinkError(
            f"{field}: key file {path} is not readable by this user",
            "give the service user read access (chmod 600 and chown the file to it)",
        )
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SinkError(
            f"{field}: {path} is not a ZeroMQ certificate ({type(exc).__name__})",
            _FIX_KEYGEN,
        ) from None
    if not _valid_key(public):
        raise SinkError(
            f"{field}: {path} has no valid public-key (40 Z85 characters expected)",
            _FIX_KEYGEN,
        )
    return public, secret


def load_secret_certificate(path: str | os.PathLike[str], field: str) -> tuple[bytes, bytes]:
    """Load a key pair from a secret certificate file (``NAME.key_secret``).

    Parameters
    ----------
    path : path
        Certificate file with ``public-key`` and ``secret-key`` lines.
    field : str
        Config field or option naming the file (used in errors).

    Returns
    -------
    tuple of bytes
        ``(public_key, secret_key)``, each 40 Z85 characters.

    Raises
    ------
    SinkError
        If CURVE is unavailable, or the file is missing, unreadable, not a certificate,
        or holds no valid secret key. The message never contains key material.
    """
    require_curve(field)
    p = Path(path)
    public, secret = _read_certificate(p, field)
    if not _valid_key(secret):
        raise SinkError(
            f"{field}: {p} holds no valid secret-key (it looks like a public certificate)",
            f"point {field} at the NAME.key_secret file written by `rtdecode keygen`",
        )
    try:
        mode = p.stat().st_mode
    except OSError:  # pragma: no cover - raced with deletion
        mode = 0
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "%s: secret key file %s is accessible by group/others (mode %o); run chmod 600 on it",
            field,
            p,
            stat.S_IMODE(mode),
        )
    assert secret is not None
    return public, secret


def load_public_key(key: str | os.PathLike[str] | bytes, field: str) -> bytes:
    """Load a public key from a certificate file, or take a Z85 key as given.

    Parameters
    ----------
    key : str, path or bytes
        A certificate file (``NAME.key`` or ``NAME.key_secret``; only its public key is
        used), or the 40-character Z85 public key itself.
    field : str
        Option naming the key (used in errors).

    Returns
    -------
    bytes
        The public key, 40 Z85 characters.

    Raises
    ------
    SinkError
        If the file is missing or unreadable, or the text is not a Z85 key.
    """
    require_curve(field)
    if isinstance(key, bytes):
        raw = key
    elif isinstance(key, str) and len(key) == KEY_Z85_LEN and not Path(key).exists():
        raw = key.encode("ascii", errors="replace")
    else:
        return _read_certificate(Path(key), field)[0]
    if not _valid_key(raw):
        raise SinkError(
            f"{field}: not a 40-character Z85 public key nor an existing certificate file",
            "pass the server's NAME.key file (from `rtdecode keygen`)",
        )
    return raw


def load_client_keys(directory: str | os.PathLike[str], field: str) -> frozenset[bytes]:
    """Public keys of the authorized clients: every ``*.key`` certificate in a directory.

    Parameters
    ----------
    directory : path
        Directory holding client public certificates (``NAME.key``).
    field : str
        Config field naming the directory (used in errors).

    Returns
    -------
    frozenset of bytes
        Z85 public keys (40 characters each), at least one.

    Raises
    ------
    SinkError
        If the directory is missing or unreadable, a ``.key`` file is not a valid
        certificate, or there is no ``.key`` file at all (nobody could subscribe).
    """
    require_curve(field)
    d = Path(directory)
    try:
        is_dir = d.is_dir()
    except (OSError, ValueError) as exc:
        raise SinkError(f"{field}: cannot use path {str(d)[:200]!r} ({exc})",
                        "point it at a directory of client NAME.key files") from None
    if not is_dir:
        raise SinkError(
            f"{field}: {d} is not a directory",
            "create it and copy each controller's NAME.key (public) certificate into it",
        )
    try:
        files = sorted(d.glob("*.key"))
    except OSError as exc:
        raise SinkError(f"{field}: cannot list {d}: {exc.strerror}", "fix its permissions") from None
    if not os.access(d, os.R_OK | os.X_OK):
        raise SinkError(f"{field}: directory {d} is not readable", "fix its permissions")
    if not files:
        raise SinkError(
            f"{field}: {d} holds no client certificate (*.key); no client could subscribe",
            "copy each controller's NAME.key into it, or set sink.curve_allow_any = true",
        )
    return frozenset(_read_certificate(f, f"{field} ({f.name})")[0] for f in files)


class ClientKeyRegistry:
    """CURVE credentials provider for :class:`zmq.auth.thread.ThreadAuthenticator`.

    Parameters
    ----------
    keys : frozenset of bytes or None
        Authorized Z85 client public keys; None accepts any client (``any`` mode).

    Attributes
    ----------
    accepted : int
        Handshakes allowed.
    denied : int
        Handshakes refused (unknown client key).
    """

    def __init__(self, keys: frozenset[bytes] | None) -> None:
        self._keys = keys
        self.accepted = 0
        self.denied = 0
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        """``"clients"`` (authorized list) or ``"any"``."""
        return "any" if self._keys is None else "clients"

    def callback(self, domain: str, key: bytes) -> bool:
        """Decide one handshake (called in the authenticator thread).

        Parameters
        ----------
        domain : str
            ZAP domain (unused).
        key : bytes
            The client's Z85 public key.

        Returns
        -------
        bool
            True to allow the client.
        """
        allowed = self._keys is None or key in self._keys
        first = False
        with self._lock:
            if allowed:
                self.accepted += 1
            else:
                self.denied += 1
                first = self.denied == 1
        if not allowed:
            # a public key is not a secret; log the first refusal, count the rest
            log = logger.warning if first else logger.debug
            log("CURVE: refused a client with unknown public key %s%s", key.decode(),
                " (further refusals are only counted)" if first else "")
        return allowed


def start_authenticator(ctx: zmq.Context, registry: ClientKeyRegistry) -> ThreadAuthenticator:
    """Start a ZAP handler in ``ctx`` that asks ``registry`` about every CURVE client.

    Parameters
    ----------
    ctx : zmq.Context
        The publisher's context (one ZAP handler per context). The publisher socket
        must set ``ZMQ_ZAP_DOMAIN`` to :data:`ZAP_DOMAIN`.
    registry : ClientKeyRegistry
        Decides each handshake and counts the outcomes.

    Returns
    -------
    ThreadAuthenticator
        Started; call ``stop()`` before closing the context.
    """
    auth = ThreadAuthenticator(ctx, log=logging.getLogger(f"{__name__}.zap"))
    auth.start()
    auth.configure_curve_callback(ZAP_DOMAIN.decode(), registry)
    return auth


def create_keypair(
    directory: str | os.PathLike[str], name: str, *, force: bool = False
) -> tuple[Path, Path]:
    """Write a new CURVE key pair as ZeroMQ certificate files.

    The files are created in a private temporary directory with
    :func:`zmq.auth.create_certificates`, the secret one set to mode 0600 and then
    moved into ``directory``, so the secret key is never readable by others.

    Parameters
    ----------
    directory : path
        Destination directory (created with mode 0700 when missing).
    name : str
        Base name: writes ``NAME.key`` (public, mode 0644) and ``NAME.key_secret``
        (public + secret, mode 0600).
    force : bool, optional
        Overwrite existing files of that name.

    Returns
    -------
    tuple of Path
        ``(public_file, secret_file)``.

    Raises
    ------
    SinkError
        If CURVE is unavailable, the name is not a plain file name, the files exist
        (without ``force``) or the directory cannot be written.
    """
    require_curve("rtdecode keygen")
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise SinkError(f"key name {name!r} is not a plain file name", "pass e.g. --name server")
    out = Path(directory)
    public_file, secret_file = out / f"{name}.key", out / f"{name}.key_secret"
    if not force:
        for f in (public_file, secret_file):
            if f.exists():
                raise SinkError(
                    f"{f} already exists; refusing to overwrite a key",
                    "choose another --name or directory, or pass --force",
                )
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".keygen-") as tmp:
            pub_tmp, sec_tmp = zmq.auth.create_certificates(tmp, name)
            os.chmod(sec_tmp, 0o600)
            os.chmod(pub_tmp, 0o644)
            os.replace(sec_tmp, secret_file)
            os.replace(pub_tmp, public_file)
    except OSError as exc:
        raise SinkError(
            f"cannot write keys into {out}: {exc.strerror or exc}",
            "choose a directory you can write to",
        ) from None
    return public_file, secret_file
