"""Fault-injection helpers for the reliability tests: a controllable LSL producer, a daemon
process, message collection and the measured-times record.

Everything here is a real part: the producer is a real LSL outlet pushing on a drift-free
schedule (channel 0 carries the sample index), the daemon is ``python -m rtdecode serve``,
messages come over a real ZeroMQ subscriber. Faults are what a rig does: stop pushing
(pause), push a backlog late, destroy the outlet, start a new one, send NaN / Inf.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC, Message

ROOT = Path(__file__).resolve().parents[1]
PY = [sys.executable, "-m", "rtdecode", "--log-level", "INFO"]
#: Measured detect / recover / exit times of the fault tests land here (docs/reliability.md).
RESULTS = ROOT / "out" / "reliability"


class Producer:
    """A real LSL outlet pushing ``rate_hz`` samples/s in chunks from a background thread.

    Sample ``i`` has timestamp ``t0 + i / rate_hz`` and channel 0 = ``index_base + i``;
    the other channels carry a slow sine. ``mutate(x, idx)`` may edit a chunk in place
    (NaN bursts). :meth:`pause` stops pushing but keeps the schedule, so :meth:`resume`
    with ``backlog=True`` pushes the missed samples late with their old timestamps (a
    producer that froze and catches up), ``backlog=False`` skips them. ``stamp_delay_s`` stamps
    every sample that much before its push (an amplifier that buffers, with back-dated stamps).
    """

    def __init__(self, name: str, *, channels: int = 4, rate_hz: float = 500.0,
                 source_id: str = "", chunk: int = 5, fmt: str = "float32", index_base: int = 0,
                 mutate: Callable[[np.ndarray, np.ndarray], None] | None = None,
                 stamp_delay_s: float = 0.0) -> None:
        self.name, self.channels, self.rate_hz, self.chunk = name, channels, rate_hz, chunk
        self.stamp_delay_s = stamp_delay_s
        self.outlet: pylsl.StreamOutlet | None = pylsl.StreamOutlet(
            pylsl.StreamInfo(name, "EEG", channels, rate_hz, fmt, source_id), 0, 360)
        self.index_base = index_base
        self.mutate = mutate
        self.i = 0
        self.t0 = 0.0
        self.t_first_push = float("nan")
        self.t_last_push = float("nan")
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, wait_consumer_s: float = 0.0) -> Producer:
        """Start pushing (timestamps from now), after a consumer connected if asked to."""
        if wait_consumer_s > 0 and self.outlet is not None:
            self.outlet.wait_for_consumers(wait_consumer_s)
        self.t0 = pylsl.local_clock()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            due = self.t0 + (self.i + self.chunk) / self.rate_hz
            wait = due - pylsl.local_clock()
            if wait > 0:
                time.sleep(min(wait, 0.005))
                continue
            if self._paused.is_set():
                time.sleep(0.002)
                continue
            with self._lock:
                if self.outlet is None:
                    return
                n = self.chunk
                while True:  # push everything that is due (a backlog after a pause)
                    idx = np.arange(self.i, self.i + n)
                    x = np.empty((n, self.channels), np.float32)
                    x[:, 0] = self.index_base + idx
                    x[:, 1:] = np.sin(2 * np.pi * 0.5 * idx / self.rate_hz)[:, None]
                    if self.mutate is not None:
                        self.mutate(x, idx)
                    self.outlet.push_chunk(x, (self.t0 - self.stamp_delay_s + idx / self.rate_hz).tolist())
                    now = pylsl.local_clock()
                    if self.i == 0:
                        self.t_first_push = now
                    self.t_last_push = now
                    self.i += n
                    if self.t0 + (self.i + n) / self.rate_hz > now:
                        break

    def pause(self) -> float:
        """Stop pushing; returns the local time of the last push."""
        self._paused.set()
        with self._lock:
            return self.t_last_push

    def resume(self, backlog: bool) -> float:
        """Push again (with or without the missed samples); returns the local time."""
        with self._lock:
            if not backlog:
                self.i = int(np.ceil((pylsl.local_clock() - self.t0) * self.rate_hz))
                self.i -= self.i % self.chunk
            self._paused.clear()
        return pylsl.local_clock()

    def close(self) -> float:
        """Stop and destroy the outlet (the rig dies); returns the local time of the last push."""
        self._stop.set()
        with self._lock:
            outlet, self.outlet = self.outlet, None
        if self._thread.ident is not None:  # started
            self._thread.join(5)
        del outlet  # liblsl closes the connection now
        return self.t_last_push


def write_config(path: Path, *, name: str, model: Path, endpoint: str, source: str = "",
                 service: str = "", decoder: str = "", extra: str = "", warmup_runs: int = 2) -> Path:
    """A daemon TOML with short timeouts (tests), returns its path."""
    path.write_text(
        f'[source]\nname = "{name}"\nresolve_timeout_s = 20\n{source}\n\n'
        f'[[decoders]]\nname = "dec"\nmodel = "{model}"\n{decoder}\n\n'
        f'{extra}\n'
        f'[sink]\nendpoint = "{endpoint}"\nheartbeat_s = 0.2\nsndhwm = 100000\n\n'
        f"[service]\nwarmup_runs = {warmup_runs}\nstats_interval_s = 5\n{service}\n")
    return path


def serve(cfg: Path, *args: str) -> subprocess.Popen:
    """Start ``rtdecode serve cfg`` (stderr captured as text)."""
    return subprocess.Popen(PY + ["serve", str(cfg), *args], stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> str:
    """SIGTERM, wait, kill if needed; returns stderr."""
    if proc is None:
        return ""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stderr.read() if proc.stderr else ""


def wait_status(sub: Subscriber, pred: Callable[[dict], bool], timeout_s: float = 30.0,
                into: list[Message] | None = None) -> dict:
    """Receive until a status message satisfies ``pred``; estimates go to ``into``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = sub.recv(timeout_s=0.1)
        if m is None:
            continue
        if m.status is not None:
            if pred(m.status):
                return m.status
        elif into is not None:
            into.append(m)
    raise AssertionError(f"no matching status within {timeout_s} s")


def collect(sub: Subscriber, until: Callable[[], bool], timeout_s: float,
            into: list[Message], statuses: list[dict] | None = None) -> None:
    """Receive estimates into ``into`` until ``until()`` or the timeout."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not until():
        m = sub.recv(timeout_s=0.05)
        if m is None:
            continue
        if m.status is not None:
            if statuses is not None:
                statuses.append(m.status)
        else:
            into.append(m)


def drain(sub: Subscriber, seconds: float, into: list[Message],
          statuses: list[dict] | None = None) -> None:
    """Receive for ``seconds``."""
    collect(sub, lambda: False, seconds, into, statuses)


def subscriber(endpoint: str, *topics: str) -> Subscriber:
    """A subscriber to ``topics`` and the status topic."""
    return Subscriber(endpoint, topics=[*topics, STATUS_TOPIC])


def record(request: Any, name: str, values: dict[str, Any]) -> None:
    """Report measured times: pytest property, a line on stdout (-s) and out/reliability/NAME.json.

    Timings are reported, never asserted (they depend on the machine).
    """
    for k, v in values.items():
        request.node.user_properties.append((k, v))
    RESULTS.mkdir(parents=True, exist_ok=True)
    values = {**values, "test": request.node.nodeid, "cpu": _cpu(), "cores": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    (RESULTS / f"{name}.json").write_text(json.dumps(values, indent=2))
    sys.stdout.write(f"\n[reliability] {name}: {json.dumps(values)}\n")


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
