"""``rtdecode check [ENDPOINT]``: health check for systemd / Docker (exit 0 healthy, 1 not)."""

from __future__ import annotations

import argparse
import json
import time


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``check`` sub-command."""
    p = sub.add_parser("check", help="read the daemon's status message; exit 0 if it is running")
    p.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5555", help="daemon endpoint")
    p.add_argument("--timeout", type=float, default=3.0, help="wait this long for a status, s")
    p.add_argument("--json", action="store_true", help="print the whole status JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a status arrives and says ``running``; 1 otherwise."""
    from rtdecode.sinks.client import Subscriber
    from rtdecode.sinks.protocol import STATUS_TOPIC

    deadline = time.monotonic() + args.timeout
    with Subscriber(args.endpoint, topics=[STATUS_TOPIC]) as sub:
        while time.monotonic() < deadline:
            msg = sub.recv(timeout_s=max(0.0, deadline - time.monotonic()))
            if msg is None or msg.status is None:
                continue
            st = msg.status
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                lat = st.get("latency_ms", {})
                print(f"{st.get('state')}: {st.get('input', {}).get('samples_in', 0)} samples in, "
                      f"{st.get('messages_out', 0)} messages out, age p99 {lat.get('p99')} ms")
            return 0 if st.get("state") == "running" else 1
    print(f"no status from {args.endpoint} within {args.timeout:g} s")
    return 1
