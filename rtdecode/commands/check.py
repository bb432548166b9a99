"""``rtdecode check [ENDPOINT]``: health check for systemd / Docker (exit 0 healthy, 1 not).

Reads one status message of the daemon (sent every ``sink.heartbeat_s``) and prints one
line: the state and why. Healthy means ``running`` (decoding fresh input); ``stale`` (no
input: the daemon publishes safe values), ``behind`` (the input arrives faster than it is
decoded: outputs are late or skip samples), ``starting``, ``stopping`` and no status at all
(daemon gone, wrong endpoint) are unhealthy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from rtdecode.sinks.client import add_curve_arguments, curve_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``check`` sub-command."""
    p = sub.add_parser("check", help="read the daemon's status message; exit 0 if it is running",
                       description="Health check: exit 0 when the daemon is running on fresh input, "
                                   "1 when it is stale, behind, starting, stopping or silent.")
    p.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5555", help="daemon endpoint")
    p.add_argument("--timeout", type=float, default=3.0,
                   help="wait this long for a status, s (more than the daemon's sink.heartbeat_s)")
    p.add_argument("--json", action="store_true", help="print the whole status JSON")
    add_curve_arguments(p)
    p.set_defaults(func=run)


def summary_line(st: dict) -> str:
    """One line for a status dict: ``<state>: <reason> | counters``."""
    lat = st.get("latency_ms") or {}
    inp = st.get("input") or {}
    return (f"{st.get('state')}: {st.get('reason') or st.get('state')} | "
            f"{inp.get('samples_in', 0)} samples in, {st.get('messages_out', 0)} messages out, "
            f"{st.get('stale_episodes', 0)} stale episodes, {inp.get('reconnects', 0)} reconnects, "
            f"{(st.get('behind') or {}).get('episodes', 0)} behind episodes, age p99 {lat.get('p99')} ms")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a status arrives and says ``running``; 1 otherwise (with the reason)."""
    from rtdecode.sinks.client import Subscriber
    from rtdecode.sinks.protocol import STATUS_TOPIC

    deadline = time.monotonic() + args.timeout
    with Subscriber(args.endpoint, topics=[STATUS_TOPIC], **curve_kwargs(args)) as sub:
        while time.monotonic() < deadline:
            msg = sub.recv(timeout_s=max(0.0, deadline - time.monotonic()))
            if msg is None or msg.status is None:
                continue
            st = msg.status
            sys.stdout.write((json.dumps(st, indent=2) if args.json else summary_line(st)) + "\n")
            return 0 if st.get("state") == "running" else 1
    sys.stdout.write(f"no status from {args.endpoint} within {args.timeout:g} s: the daemon is not "
                     "running, or listens on another endpoint\n")
    return 1
