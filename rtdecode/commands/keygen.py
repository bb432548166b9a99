"""``rtdecode keygen DIR [--name N]``: write a CURVE key pair for an encrypted output stream.

Writes ``DIR/N.key`` (public certificate, share it) and ``DIR/N.key_secret`` (public +
secret key, mode 0600, keep it private) in ZeroMQ certificate format. Make one pair for
the server (``sink.curve_secret_key``) and one per controller (copy each controller's
``N.key`` into the server's ``sink.curve_clients`` directory). See docs/security.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rtdecode.errors import RtdecodeError

logger = logging.getLogger(__name__)

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``keygen`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        Result of ``ArgumentParser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``keygen`` parser (``func`` default set to :func:`run`).
    """
    parser = subparsers.add_parser(
        "keygen",
        help="write a CURVE key pair (ZeroMQ certificates) for encrypted subscribers",
        description=(
            "Write DIR/NAME.key (public certificate) and DIR/NAME.key_secret (secret "
            "certificate, mode 0600). Use one pair for the server (sink.curve_secret_key) "
            "and one per controller (its NAME.key goes into sink.curve_clients)."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="where to write the key files")
    parser.add_argument("--name", default="server", help="base file name (default: server)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``rtdecode keygen``.

    Parameters
    ----------
    args : argparse.Namespace
        ``directory``, ``name``, ``force``.

    Returns
    -------
    int
        0 on success, the error's exit code (5, sink) otherwise.
    """
    from rtdecode.sinks.curve import create_keypair

    try:
        public, secret = create_keypair(args.directory, args.name, force=bool(args.force))
    except RtdecodeError as exc:
        sys.stderr.write(f"rtdecode keygen: error: {exc}\n")
        return exc.exit_code
    sys.stdout.write(
        f"public certificate: {public}  (share it: server key for clients, or copy into "
        "the server's sink.curve_clients)\n"
        f"secret certificate: {secret}  (mode 0600; keep it private)\n"
    )
    return 0
