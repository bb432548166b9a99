"""``rtdecode listen``: watch the decoder output stream in the terminal.

Shows, per topic, the latest values, their age (p50 / max over the last second), the
message rate, lost messages and flags, plus a summary of the latest status message. Event
topics (TMS pulses) show the latest pulse with its measures per channel; when stdout is not
a terminal every pulse is also printed as one line as it arrives.
On a terminal the view refreshes about 8 times per second (plain ANSI escapes); when
stdout is not a terminal one summary line is printed per second instead.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from typing import Any, TextIO

from rtdecode.errors import RtdecodeError
from rtdecode.sinks.client import Subscriber, add_curve_arguments, curve_kwargs
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.sinks.protocol import STATUS_TOPIC, Message, flag_names

logger = logging.getLogger(__name__)

__all__ = ["register", "run", "format_view", "format_line", "format_pulse", "DEFAULT_ENDPOINT"]

#: Endpoint listened to when none is given (the service's default bind).
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
_REFRESH_TTY_S = 0.125
_REFRESH_LINE_S = 1.0
_N_VALUES_SHOWN = 6
_CLEAR = "\x1b[H\x1b[J"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``listen`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        Result of ``ArgumentParser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``listen`` parser (``func`` default set to :func:`run`).
    """
    parser = subparsers.add_parser(
        "listen",
        help="watch the published estimates and status in the terminal",
        description=(
            "Subscribe to an rtdecode output stream and show, per topic, the latest "
            "values, their age, the message rate, lost messages and flags, plus the "
            "latest status. Ends on Ctrl-C or after --seconds."
        ),
    )
    parser.add_argument(
        "endpoint",
        nargs="?",
        default=DEFAULT_ENDPOINT,
        help=f"publisher endpoint to connect to (default: {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--topic",
        dest="topics",
        action="append",
        metavar="T",
        help="topic to show (repeatable; default: all). The status topic is added unless "
        "--conflate is given.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--conflate",
        action="store_true",
        help="keep only the latest message (ZMQ_CONFLATE; shared by all topics, so best "
        "with one --topic)",
    )
    add_curve_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _fmt_ms(seconds: float) -> str:
    return "-" if seconds is None or math.isnan(seconds) else f"{seconds * 1e3:.1f}"


def format_pulse(msg: Message, labels: list[str] | None = None) -> str:
    """One line for an event: pulse, intensity, flags and per channel p2p (µV) @ latency (ms).

    Parameters
    ----------
    msg : Message
        An event message.
    labels : list of str, optional
        Channel labels (from the status message's ``tms.channels``); default ``ch<i>``.
    """
    ev = msg.event
    if ev is None:
        return ""
    names = labels if labels is not None and len(labels) == len(ev.channel_flags) else [
        f"ch{i}" for i in range(len(ev.channel_flags))]
    head = f"pulse {ev.pulse_id}"
    if ev.intensity_unit:
        head += f" {ev.intensity:g}{ev.intensity_unit}"
    parts = []
    for name, row, bits in zip(names, ev.values, ev.channel_flags, strict=True):
        cell = f"{name} {row[0]:.0f}uV"
        if not bits & EventFlags.NO_RESPONSE:
            cell += f"@{row[1]:.1f}ms"
        if bits & EventFlags.PREACTIVATED:
            cell += "(pre)"
        parts.append(cell)
    return f"{head} [{'|'.join(flag_names(msg.flags))}] " + " ".join(parts)


def _event_labels(status: dict[str, Any] | None, topic: str) -> list[str] | None:
    """Channel labels of an event topic, from the status message (``tms.channels``)."""
    for value in (status or {}).values():
        if isinstance(value, dict) and value.get("topic") == topic and \
                isinstance(value.get("channels"), list):
            return [str(c) for c in value["channels"]]
    return None


def _fmt_values(msg: Message | None, status: dict[str, Any] | None = None) -> str:
    if msg is not None and msg.event is not None:
        return format_pulse(msg, _event_labels(status, msg.topic))
    if msg is None or msg.values is None:
        return ""
    shown = " ".join(f"{v:+.4g}" for v in msg.values[:_N_VALUES_SHOWN])
    more = len(msg.values) - _N_VALUES_SHOWN
    return f"[{shown}{f' ...+{more}' if more > 0 else ''}]"


def _status_summary(status: dict[str, Any] | None) -> str:
    if status is None:
        return "no status yet"
    parts = []
    if "state" in status:
        parts.append(f"state={status['state']}")
    inp = status.get("input")
    if "samples_in" in status:
        parts.append(f"samples_in={status['samples_in']}")
    elif isinstance(inp, dict) and "samples_in" in inp:
        parts.append(f"samples_in={inp['samples_in']}")
    for key, value in status.items():
        if "latency" in key:
            if isinstance(value, float):
                value = f"{value:.3g}"
            elif isinstance(value, dict):
                value = ",".join(
                    f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
                )
            parts.append(f"{key}={value}")
    shown = {"state", "samples_in"} | {k for k in status if "latency" in k}
    if "samples_in" not in status and isinstance(inp, dict) and "samples_in" in inp:
        shown.add("input")
    rest = len([k for k in status if k not in shown])
    if rest:
        parts.append(f"(+{rest} keys)")
    return " ".join(parts) if parts else "{}"


def format_view(
    stats: dict[str, dict[str, Any]], endpoint: str, elapsed_s: float, malformed: int = 0
) -> str:
    """Render the full-screen terminal view (without the clear-screen escape).

    Parameters
    ----------
    stats : dict
        Result of :meth:`Subscriber.stats` (per topic).
    endpoint : str
        Endpoint shown in the title.
    elapsed_s : float
        Time since start, s.
    malformed : int, optional
        Malformed frames so far (:attr:`Subscriber.malformed`).

    Returns
    -------
    str
        Multi-line text.
    """
    topics = stats
    lines = [
        f"{_BOLD}rtdecode listen{_RESET} {endpoint}   t={elapsed_s:.1f}s   "
        f"malformed={malformed}   (Ctrl-C to quit)",
        "",
        f"{'topic':<16} {'rate Hz':>8} {'age p50 ms':>10} {'age max ms':>10} "
        f"{'seq':>9} {'lost':>6} {'restarts':>8}  flags / values",
    ]
    estimate_topics = [t for t in topics if t != STATUS_TOPIC]
    last_status = _last_status(topics)
    if not estimate_topics:
        lines.append("  (no estimates received yet)")
    for topic in estimate_topics:
        s = topics[topic]
        lines.append(
            f"{topic[:16]:<16} {s['rate_hz']:>8.1f} {_fmt_ms(s['age_p50_s']):>10} "
            f"{_fmt_ms(s['age_max_s']):>10} {s['seq']:>9} {s['lost']:>6} {s['restarts']:>8}  "
            f"{'|'.join(s['flags'])}"
        )
        lines.append(f"{'':<16} {_fmt_values(s['last'], last_status)}")
    status = topics.get(STATUS_TOPIC)
    lines.append("")
    if status is None:
        lines.append("status: no status yet")
    else:
        last = status["last"]
        lines.append(
            f"status: seq={status['seq']} rate={status['rate_hz']:.1f}Hz "
            f"flags={'|'.join(status['flags'])} lost={status['lost']}"
        )
        lines.append(f"  {_status_summary(last.status if last is not None else None)}")
    return "\n".join(lines) + "\n"


def format_line(stats: dict[str, dict[str, Any]], elapsed_s: float, malformed: int = 0) -> str:
    """Render one summary line (non-terminal output).

    Parameters
    ----------
    stats : dict
        Result of :meth:`Subscriber.stats` (per topic).
    elapsed_s : float
        Time since start, s.
    malformed : int, optional
        Malformed frames so far (:attr:`Subscriber.malformed`).

    Returns
    -------
    str
        One line without the trailing newline.
    """
    parts = [f"t={elapsed_s:.1f}s"]
    status = None
    last_status = _last_status(stats)
    for topic, s in stats.items():
        if topic == STATUS_TOPIC:
            status = s
            continue
        parts.append(
            f"{topic}: n={s['received']} rate={s['rate_hz']:.1f}Hz "
            f"age_p50={_fmt_ms(s['age_p50_s'])}ms age_max={_fmt_ms(s['age_max_s'])}ms "
            f"lost={s['lost']} flags={'|'.join(s['flags'])} v={_fmt_values(s['last'], last_status)}"
        )
    if status is not None and status["last"] is not None:
        parts.append(f"status: {_status_summary(status['last'].status)}")
    else:
        parts.append("status: none")
    if malformed:
        parts.append(f"malformed={malformed}")
    return " | ".join(parts)


def _last_status(stats: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    entry = stats.get(STATUS_TOPIC)
    last = entry["last"] if entry is not None else None
    return last.status if last is not None else None


def _listen(sub: Subscriber, args: argparse.Namespace, out: TextIO) -> None:
    tty = out.isatty()
    period = _REFRESH_TTY_S if tty else _REFRESH_LINE_S
    start = time.monotonic()
    deadline = math.inf if args.seconds is None else start + max(0.0, args.seconds)
    next_refresh = start + (0.0 if tty else period)
    while True:
        now = time.monotonic()
        if now >= next_refresh:
            elapsed = now - start
            if tty:
                out.write(_CLEAR + format_view(sub.stats(), args.endpoint, elapsed, sub.malformed))
            else:
                out.write(format_line(sub.stats(), elapsed, sub.malformed) + "\n")
            if sub.handshake_error is not None:
                out.write(f"cannot subscribe: {sub.handshake_error}\n")
            out.flush()
            next_refresh = now + period
        if now >= deadline:
            break
        msg = sub.recv(max(0.0, min(next_refresh, deadline) - now))
        if msg is not None and msg.is_event and not tty:
            st = sub.topic_stats(STATUS_TOPIC)
            status = st.last.status if st is not None and st.last is not None else None
            out.write(format_pulse(msg, _event_labels(status, msg.topic)) + "\n")
    if not tty:
        # final line so short runs (< 1 s) still report something
        out.write(format_line(sub.stats(), time.monotonic() - start, sub.malformed) + "\n")
        out.flush()


def run(args: argparse.Namespace) -> int:
    """Run ``rtdecode listen``.

    Parameters
    ----------
    args : argparse.Namespace
        ``endpoint``, ``topics`` (list or None), ``seconds`` (float or None),
        ``conflate`` (bool).

    Returns
    -------
    int
        Exit code: 0 after Ctrl-C or ``--seconds`` when messages arrived; 1 when nothing at all
        arrived (no daemon publishing there); the error's exit code when the subscriber cannot
        be set up.
    """
    topics = getattr(args, "topics", None)
    conflate = bool(getattr(args, "conflate", False))
    if topics is not None and not conflate and STATUS_TOPIC not in topics:
        topics = [*topics, STATUS_TOPIC]  # conflating on one topic must not mix in status
    if conflate and (topics is None or len(topics) > 1):
        print(
            "warning: --conflate keeps only the latest message of all subscribed topics "
            "together; pass one --topic to see every topic's latest value",
            file=sys.stderr,
        )
    try:
        sub = Subscriber(args.endpoint, topics=topics, conflate=conflate, **curve_kwargs(args))
        sub.open()
    except RtdecodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        _listen(sub, args, sys.stdout)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        if sys.stdout.isatty():
            sys.stdout.write("\n")
    if sub.handshake_error is None and not any(s["received"] for s in sub.stats().values()):
        print(f"rtdecode listen: no message from {args.endpoint} (not even a status heartbeat): is "
              "a daemon publishing there? Check the endpoint (sink.endpoint) and `rtdecode check`",
              file=sys.stderr)
        return 1
    return 0
