"""``rtdecode report SESSION.h5 [PART.h5 ...]``: a summary of a recorded session with plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser("report", help="summarise a recorded session (numbers and plots)",
                       description="Write summary.json, report.md and plots (outputs over time with "
                                   "flagged stretches shaded, sample-age histogram, per-stage timing, "
                                   "STALE / DEGRADED episodes) for a session recorded by the daemon.")
    p.add_argument("session", nargs="+", help="session file(s): one part, or consecutive parts")
    p.add_argument("--out", default=None, help="output folder (default: SESSION-report next to it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the session, write the report, print where."""
    from rtdecode.record.reader import read_session
    from rtdecode.record.report import write_report

    first = Path(args.session[0])
    out = Path(args.out) if args.out else first.with_name(first.stem + "-report")
    md = write_report(read_session(list(args.session)), out)
    print(f"report: {md}")
    return 0
