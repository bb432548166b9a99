"""``rtdecode listen`` against a real publisher running in a thread."""

from __future__ import annotations

import argparse
import threading

import numpy as np
import pytest

from rtdecode.commands import listen
from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC, EstimateEncoder, encode_status
from rtdecode.sinks.zmq_pub import Publisher
from rtdecode.types import Flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtdecode")
    listen.register(parser.add_subparsers(dest="command"))
    return parser


class _Feed:
    """Publishes estimates on 'cortex' and a status every 10th tick until stopped."""

    def __init__(self) -> None:
        self.pub = Publisher("tcp://127.0.0.1:*").open()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        enc = EstimateEncoder("cortex", 8)
        seq = 0
        while not self.stop.wait(0.005):
            t = pylsl.local_clock()
            values = np.arange(8, dtype=np.float32) + seq
            self.pub.send(enc.encode(seq, Flags.WARMUP | Flags.HOLD, t - 0.002, t, values))
            if seq % 10 == 0:
                status = {
                    "state": "running",
                    "input": {"samples_in": seq * 10, "gaps": 0},
                    "latency_ms": {"p50": 1.25, "p99": None},
                    "messages_out": seq,
                }
                self.pub.send(encode_status(STATUS_TOPIC, seq // 10, t, status))
            seq += 1

    def __enter__(self) -> _Feed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.pub.close()


def test_parser_defaults() -> None:
    args = _parser().parse_args(["listen"])
    assert args.endpoint == listen.DEFAULT_ENDPOINT == "tcp://127.0.0.1:5555"
    assert args.topics is None and args.seconds is None and args.conflate is False
    assert args.func is listen.run
    args = _parser().parse_args(
        ["listen", "ipc:///tmp/x", "--topic", "a", "--topic", "b", "--seconds", "2", "--conflate"]
    )
    assert (args.endpoint, args.topics, args.seconds, args.conflate) == (
        "ipc:///tmp/x",
        ["a", "b"],
        2.0,
        True,
    )


def test_listen_prints_summary_lines_when_not_a_tty(capsys: pytest.CaptureFixture) -> None:
    with _Feed() as feed:
        args = _parser().parse_args(
            ["listen", feed.pub.bound_endpoint, "--topic", "cortex", "--seconds", "1.3"]
        )
        assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) >= 2  # one per second plus the final line
    last = out[-1]
    assert "cortex: n=" in last and "rate=" in last and "age_p50=" in last
    assert "flags=WARMUP|HOLD" in last and "lost=0" in last
    assert "status: state=running samples_in=" in last
    assert "latency_ms=p50=1.25,p99=None" in last and "(+1 keys)" in last


def test_listen_exit_code_on_bad_endpoint(capsys: pytest.CaptureFixture) -> None:
    args = _parser().parse_args(["listen", "nonsense://x", "--seconds", "0.1"])
    assert args.func(args) == 5
    assert "cannot connect" in capsys.readouterr().err


def test_terminal_view_renders_real_stats() -> None:
    with _Feed() as feed, Subscriber(feed.pub.bound_endpoint) as sub:
        for _ in range(2000):
            sub.recv(timeout_s=1.0)
            stats = sub.stats()
            if "cortex" in stats and STATUS_TOPIC in stats:
                break
        endpoint = feed.pub.bound_endpoint
        view = listen.format_view(stats, endpoint, 1.0)
    assert endpoint in view
    cortex_line = next(line for line in view.splitlines() if line.startswith("cortex"))
    assert "WARMUP|HOLD" in cortex_line
    assert "[+" in view  # the latest values
    assert "state=running" in view


def test_listen_where_nothing_publishes_exits_1(tmp_path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    """Nothing at the endpoint (not even a heartbeat) is an error, not a quiet 'status: none'."""
    args = _parser().parse_args(["listen", f"ipc://{tmp_path}/nobody.sock", "--seconds", "0.3"])
    assert args.func(args) == 1
    assert "no message from" in capsys.readouterr().err
