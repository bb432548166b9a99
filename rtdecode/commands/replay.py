"""``rtdecode replay FILE``: play a recording file into an LSL outlet in real time."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from rtdecode.errors import ConfigError
from rtdecode.io.readers import read_recording
from rtdecode.sources.pacing import stop_on_signals
from rtdecode.sources.player import Player

logger = logging.getLogger(__name__)


#: the command installs its own SIGINT / SIGTERM handling (rtdecode.cli keeps the early one until then)
OWNS_SIGNALS = True


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "replay", help="replay a recording (.xdf .mat .npz .csv) through an LSL outlet (and its "
                       "markers through a marker outlet)",
        description="Push a recording file into an LSL outlet at its own rate (or faster with "
                    "--rate-factor), with per-sample timestamps on a drift-free schedule. "
                    "Ctrl-C or SIGTERM stops it cleanly.")
    p.add_argument("file", help="recording file or dataset folder")
    p.add_argument("--name", help="LSL stream name (default: rtdecode-replay-<file stem>)")
    p.add_argument("--type", dest="stype",
                   help="LSL content type (default: the file's, else EEG)")
    p.add_argument("--stream", help="XDF: name or type of the stream to replay; a folder of TMS "
                                    "sessions (Oxford FDI layout): the subject, e.g. S1")
    p.add_argument("--fs", type=float, help="sample rate, Hz, for files that do not store one")
    p.add_argument("--loop", action="store_true", help="start again after the last sample")
    p.add_argument("--rate-factor", type=float, default=1.0,
                   help="playback speed (2 = twice real time; the nominal rate stays the "
                        "file's; default 1)")
    p.add_argument("--index-channel", type=int, metavar="K",
                   help="replace channel K with the running sample index (loss checks)")
    p.add_argument("--start-s", type=float, default=0.0, help="first second to play")
    p.add_argument("--stop-s", type=float, help="end of the part to play, s")
    p.add_argument("--chunk-ms", type=float, default=1.0, help="chunk duration, ms (default 1)")
    p.add_argument("--wait-consumer-s", type=float, default=0.0,
                   help="wait up to this long for a consumer before playing (default 0)")
    p.add_argument("--wait-markers", action="store_true",
                   help="with --wait-consumer-s, also wait for a consumer of NAME-markers (a TMS "
                        "service), so that no marker is pushed before it listens")
    p.add_argument("--seconds", type=float, help="stop after this many seconds of playback")
    p.add_argument("--no-markers", dest="markers", action="store_false",
                   help="do not open the NAME-markers outlet for the recording's markers")
    p.add_argument("--marker-lead-ms", type=float, default=0.0,
                   help="push each marker this long before its sample (negative: after it); "
                        "its timestamp is its sample's (default 0)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``rtdecode replay``; returns the exit code (errors propagate as RtdecodeError)."""
    if args.chunk_ms <= 0:
        raise ConfigError(f"--chunk-ms must be > 0, got {args.chunk_ms}", "use e.g. 1")
    recording = read_recording(args.file, stream=args.stream, fs=args.fs)
    if args.start_s or args.stop_s is not None:
        recording = recording.segment(args.start_s, args.stop_s)
    name = args.name or f"rtdecode-replay-{_stem(args.file)}"
    stype = args.stype or str(recording.meta.get("stream_type") or "EEG")
    player = Player(recording, name=name, stype=stype, chunk_s=args.chunk_ms / 1e3,
                    rate_factor=args.rate_factor, loop=args.loop,
                    index_channel=args.index_channel, markers=args.markers,
                    marker_lead_s=args.marker_lead_ms / 1e3)
    stop = threading.Event()
    with stop_on_signals(stop), player:
        print(f"replaying {args.file}: {recording.n_samples} samples x {recording.n_channels} "
              f"ch at {recording.fs:g} Hz (x{args.rate_factor:g}) as LSL stream {name!r} "
              f"({stype})" + (f" with marker stream {player.markers.name!r}" if player.markers
                              else ""), file=sys.stderr)  # noqa: T201
        if args.wait_consumer_s > 0 and not player.wait_for_consumers(args.wait_consumer_s,
                                                                      markers=args.wait_markers):
            if stop.is_set():
                return 0
            logger.warning("no consumer connected to %r within %g s; playing anyway",
                           name, args.wait_consumer_s)
        n = player.run(stop, duration_s=args.seconds)
    print(f"pushed {n} samples", file=sys.stderr)  # noqa: T201
    return 0


def _stem(path: str) -> str:
    from pathlib import Path

    return Path(path).stem or Path(path).name
