"""``rtdecode export-nwb SESSION.h5 [PART.h5 ...] --out FILE.nwb``: a session as NWB."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export-nwb`` sub-command."""
    p = sub.add_parser("export-nwb", help="write a recorded session as NWB (archiving)",
                       description="Convert a session recorded by the daemon ([record]) to NWB: the "
                                   "input samples, every estimate with its flags and publish time, "
                                   "the status messages, the config and model metadata.")
    p.add_argument("session", nargs="+", help="session file(s): one part, or consecutive parts")
    p.add_argument("--out", default=None, help="output .nwb (default: SESSION.nwb next to it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read and export."""
    from rtdecode.record.nwb import export_nwb
    from rtdecode.record.reader import read_session

    first = Path(args.session[0])
    out = Path(args.out) if args.out else first.with_suffix(".nwb")
    print(f"wrote {export_nwb(read_session(list(args.session)), out)}")
    return 0
