"""Bare transport: an LSL inlet republished on ZeroMQ with no processing (the floor).

It is the daemon with the decoding taken out: the project's :class:`LslInlet` (same
buffers, clock sync, index accounting, same ``poll_timeout_s``), one message per pulled
chunk through the project's :class:`Publisher` and :class:`EstimateEncoder` (same wire
format and message size: the newest sample's channels ``1..n_values``, ``t_source`` =
its LSL time), and a status message every second plus a final one with the input counters.

    python -m bench relay --name S --channels 64 --rate 2048 --endpoint ipc:///tmp/x.sock
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from rtdecode.config import SourceConfig
from rtdecode.lsl import pylsl
from rtdecode.sinks.protocol import STATUS_TOPIC, EstimateEncoder, encode_status
from rtdecode.sinks.zmq_pub import Publisher
from rtdecode.sources.lsl_inlet import LslInlet
from rtdecode.sources.pacing import stop_on_signals

logger = logging.getLogger(__name__)


def run(name: str, channels: int, rate_hz: float, endpoint: str, topic: str = "dec",
        n_values: int = 1, poll_timeout_s: float = 0.05, stop: threading.Event | None = None,
        busy_poll_s: float = 0.0, index: bool = True) -> dict:
    """Relay until ``stop`` is set (SIGTERM / SIGINT in the CLI); returns the final status."""
    stop = stop or threading.Event()
    src = SourceConfig(name=name, channels=channels, rate_hz=rate_hz, index_channel=0 if index else None,
                       resolve_timeout_s=60, busy_poll_s=busy_poll_s)
    inlet = LslInlet(src)
    status_seq = 0
    sent = 0

    def status(state: str) -> dict:
        return {"state": state, "pid": os.getpid(), "input": inlet.counters(), "messages_out": sent,
                "send_dropped": pub.dropped, "what": "bare transport relay"}

    with Publisher(endpoint, sndhwm=100000, linger_ms=500) as pub:
        enc = EstimateEncoder(topic, n_values)
        inlet.open(stop)
        next_hb = pylsl.local_clock()
        hi = 1 + n_values
        while not stop.is_set():
            chunk = inlet.pull(poll_timeout_s)
            if chunk is not None:
                now = pylsl.local_clock()
                pub.send(enc.encode(sent, 0, float(chunk.t_lsl[-1]), now, chunk.samples[-1, 1:hi]))
                sent += 1
            else:
                now = pylsl.local_clock()
            pub.poll_subscriptions()  # after the message, as the daemon's housekeeping does
            if now >= next_hb:
                pub.send(encode_status(STATUS_TOPIC, status_seq, now, status("running")))
                status_seq += 1
                next_hb = now + 1.0
        final = status("stopped")
        pub.send(encode_status(STATUS_TOPIC, status_seq, pylsl.local_clock(), final))
        inlet.close()
    return final


def main(argv: list[str] | None = None) -> int:
    """CLI entry (``python -m bench relay``)."""
    ap = argparse.ArgumentParser(prog="python -m bench relay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--channels", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--topic", default="dec")
    ap.add_argument("--n-values", type=int, default=1)
    ap.add_argument("--busy-poll-s", type=float, default=0.0, help="source.busy_poll_s of the inlet")
    ap.add_argument("--no-index", action="store_true", help="the stream has no sample-index channel")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stop = threading.Event()
    with stop_on_signals(stop):
        run(args.name, args.channels, args.rate, args.endpoint, args.topic, args.n_values, stop=stop,
            busy_poll_s=args.busy_poll_s, index=not args.no_index)
    return 0
