"""``rtdecode monitor [ENDPOINT]``: watch the daemon's output live in a browser.

A ZeroMQ subscriber like any other (the daemon never waits for it: a slow page only loses
its own messages) serving a page on 127.0.0.1: live traces per topic with their flags, the
ground truth when the demo streams it (``--truth NAME-kinematics``), sample age, per-stage
latency, status and counters, and pulse events. See docs/monitor.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading

from rtdecode.commands.listen import DEFAULT_ENDPOINT
from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber, add_curve_arguments, curve_kwargs
from rtdecode.sources.pacing import stop_on_signals

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``monitor`` sub-command."""
    p = sub.add_parser("monitor", help="serve a live page of the output stream on 127.0.0.1",
                       description="Subscribe to an rtdecode output stream and serve a live page "
                                   "(traces with flags, ground truth, sample age, stage latency, "
                                   "status, events) on 127.0.0.1. Ctrl-C stops it.")
    p.add_argument("endpoint", nargs="?", default=DEFAULT_ENDPOINT,
                   help=f"publisher endpoint (default {DEFAULT_ENDPOINT})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"TCP port of the page (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.1 or ::1)")
    p.add_argument("--truth", metavar="STREAM", default=None,
                   help="LSL stream with the ground truth to draw under the estimates (channels "
                        "matched to outputs by name, e.g. the demo's NAME-kinematics)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--period-ms", type=float, default=100.0, help="page update period (default 100)")
    add_curve_arguments(p)
    p.set_defaults(func=run)


def _receive(sub: Subscriber, hub: object, stop: threading.Event) -> None:
    while not stop.is_set():
        frame = sub.recv_frame(0.1)
        if frame is not None:
            hub.feed(frame)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    """Subscribe, serve, stop on a signal or after ``--seconds``."""
    from rtdecode.monitor.hub import Hub
    from rtdecode.monitor.server import MonitorServer
    from rtdecode.monitor.truth import TruthReader

    hub = Hub(pylsl.local_clock)
    server = MonitorServer(hub, args.host, args.port, period_s=args.period_ms / 1e3,
                           info={"endpoint": args.endpoint, "truth": args.truth})
    stop = threading.Event()
    with Subscriber(args.endpoint, topics=None, **curve_kwargs(args)) as sub, stop_on_signals(stop):
        rx = threading.Thread(target=_receive, args=(sub, hub, stop), name="rtdecode-monitor-rx",
                              daemon=True)
        rx.start()
        truth = TruthReader(args.truth, hub).start(stop) if args.truth else None
        if args.seconds is not None:
            timer = threading.Timer(args.seconds, stop.set)
            timer.daemon = True
            timer.start()

        def ready(url: str) -> None:
            print(f"rtdecode monitor: {url}  (subscribed to {args.endpoint}; Ctrl-C stops)", flush=True)

        try:
            asyncio.run(server.serve(stop, on_ready=ready))
        finally:
            stop.set()
            rx.join(2.0)
            if truth is not None:
                truth.join()
    return 0
