"""``rtdecode`` command line: one sub-command per job.

Exit codes: 0 ok, 1 unexpected error, 2 config, 3 source, 4 model, 5 sink,
6 data, 7 protocol, 8 stage, 130 forced by a second interrupt.
"""

from __future__ import annotations

import os

# One BLAS thread: the hot path does small matrix products every millisecond, where
# multi-threaded BLAS only adds tail latency (measured: p99 24 ms vs 0.15 ms on 2 cores).
# Set before numpy is imported by any sub-command; a user's explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from types import FrameType  # noqa: E402

from rtdecode import __version__  # noqa: E402
from rtdecode.errors import RtdecodeError  # noqa: E402

COMMANDS = ["serve", "predict", "info", "verify", "export", "train", "evaluate", "calibrate", "inspect",
            "experiment", "replay", "simulate", "listen", "check", "demo", "keygen", "doctor", "providers",
            "trt_build", "monitor", "report", "export-nwb", "tms", "thresholds", "m2m"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="rtdecode",
        description="Real-time decoding: LSL in → causal preprocessing → ONNX Runtime → ZeroMQ out.",
    )
    parser.add_argument("--version", action="version", version=f"rtdecode {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"rtdecode.commands.{name.replace('-', '_')}")
        module.register(sub)
    return parser


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _early_signal(signum: int, frame: FrameType | None) -> None:
    """Until a command installs its own handling, SIGINT / SIGTERM end the process at once.

    A command module that installs its own handlers sets ``OWNS_SIGNALS = True`` (serve,
    replay, simulate); for the others SIGINT raises KeyboardInterrupt as Python's default does
    once the command runs, so their clean-up runs.

    Nothing needs closing yet (the daemon binds and loads only after installing its own
    handlers). Exiting here instead of raising: an exception raised inside a native
    extension's import (pydantic-core, onnxruntime) would surface as another error.
    """
    os.write(2, f"rtdecode: stopped by {signal.Signals(signum).name}\n".encode())
    os._exit(0)


@contextlib.contextmanager
def early_signals() -> Iterator[None]:
    """SIGINT / SIGTERM handled from the first instant, before any heavy import.

    Without it SIGTERM during the first second or so (imports, config, model loading before
    the daemon installs its handlers) killed the process by the signal (exit 143, no log
    line). The previous handlers are restored on the way out (``main`` called in-process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _STOP_SIGNALS}
    for s in _STOP_SIGNALS:
        signal.signal(s, _early_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 when stopped by SIGINT / SIGTERM)."""
    with early_signals():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    command = "rtdecode"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command or command
        logging.basicConfig(level=getattr(logging, args.log_level),
                            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                            datefmt="%H:%M:%S", stream=sys.stderr)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        if not getattr(sys.modules[args.func.__module__], "OWNS_SIGNALS", False):
            # the command's own clean-up runs on KeyboardInterrupt (demo stops its processes)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return int(args.func(args) or 0)
    except RtdecodeError as exc:
        print(f"rtdecode {command}: error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # a command's own SIGINT handling ended it
        sys.stderr.write(f"rtdecode {command}: stopped by SIGINT\n")
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
