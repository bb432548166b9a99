"""``rtdecode demo``: the whole closed loop on this machine, in about 30 s.

A simulated cortex (seed 002: cosine-tuned Poisson neurons, random smooth 2-D
hand trajectory) streams spikes and true kinematics over LSL; the daemon decodes
velocity with the shipped Wiener model and publishes over ZeroMQ; this process
subscribes, shows predictions against the truth and latency live, and ends with
a summary (and ``--json``). Producer, daemon and viewer are separate processes,
as in a real rig. Only loopback is used (the project's machine-scope LSL config
unless ``LSLAPICFG`` is set).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtdecode.errors import ModelError, SourceError
from rtdecode.lsl import lsl_config_in_use, pylsl
from rtdecode.metrics import r2_per_column
from rtdecode.runtime.streaming import read_metadata
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

DEMO_MODEL = "cortex_wiener.onnx"


#: The demo's model also ships inside the package (a copy of models/cortex_wiener.onnx, kept
#: identical by scripts/build_models.py and a test), so a regular install runs the demo anywhere.
EMBEDDED_MODELS = Path(__file__).resolve().parents[1] / "data"


def shipped_model(name: str) -> Path:
    """Find a shipped model.

    Looks in ``$RTDECODE_MODELS``, ``./models`` (a checkout), the source tree's ``models/`` (an
    editable install), then the models embedded in the package.
    """
    roots = [Path(os.environ["RTDECODE_MODELS"])] if "RTDECODE_MODELS" in os.environ else []
    roots += [Path.cwd() / "models", Path(__file__).resolve().parents[2] / "models", EMBEDDED_MODELS]
    for r in roots:
        if (r / name).exists():
            return r / name
    raise ModelError(f"shipped model {name} not found in {[str(r) for r in roots]}",
                     "set RTDECODE_MODELS to the models folder of an rtdecode checkout "
                     "(or run from the checkout's root)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser("demo", help="simulated rig → daemon → live viewer, with a summary")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to stream")
    p.add_argument("--json", dest="json_out", default=None, help="write the summary here")
    p.add_argument("--neurons", type=int, default=50, help="simulated neurons")
    p.add_argument("--seed", type=int, default=1234, help="simulator seed (not the training seed)")
    p.add_argument("--quiet", action="store_true", help="no live view, summary only")
    p.add_argument("--save", default=None, help="also save predictions and truth to this .npz")
    p.add_argument("--monitor-port", type=int, default=8765,
                   help="port of the live browser monitor on 127.0.0.1 (default 8765; 0 = any free)")
    p.add_argument("--no-monitor", action="store_true", help="do not start the browser monitor")
    p.add_argument("--record", metavar="DIR", default=None,
                   help="record the session into DIR ([record]; then rtdecode report / replay it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the rig and the daemon, watch, summarise."""
    model = shipped_model(DEMO_MODEL)
    meta = read_metadata(model)
    if meta.channels != args.neurons:
        raise ModelError(f"{model.name} decodes {meta.channels} neurons, --neurons is {args.neurons}",
                         f"use --neurons {meta.channels}")
    tag = f"rtdecode-demo-{os.getpid()}"
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    workdir = Path(tempfile.mkdtemp(prefix="rtdecode-demo-"))
    cfg_path = _write_config(workdir, tag, model, meta.channels, meta.rate_hz, endpoint, args)
    env = dict(os.environ, LSLAPICFG=lsl_config_in_use())
    py = [sys.executable, "-m", "rtdecode", "--log-level", "WARNING"]
    print(f"rtdecode demo: simulated cortex ({meta.channels} neurons @ {meta.rate_hz:g} Hz) → "
          f"daemon [{model.name}] → {endpoint}")
    print(f"  LSL config: {lsl_config_in_use() or 'liblsl defaults'}   logs: {workdir}")
    daemon_log = open(workdir / "daemon.log", "w")  # noqa: SIM115
    sim_log = open(workdir / "simulator.log", "w")  # noqa: SIM115
    # The rig streams a little longer than the demo watches, so the demo ends on its own
    # terms: it stops the daemon (SIGTERM, final status) while input is still flowing.
    sim = subprocess.Popen(py + ["simulate", "cortex", "--name", tag, "--neurons", str(args.neurons),
                                 "--rate-hz", str(meta.rate_hz), "--seed", str(args.seed),
                                 "--seconds", str(args.seconds + 30), "--wait-consumer-s", "60"],
                           env=env, stdout=sim_log, stderr=subprocess.STDOUT)
    daemon: subprocess.Popen | None = None
    monitor = (None if args.no_monitor
               else _start_monitor(py, endpoint, f"{tag}-kinematics", args, env, workdir))
    rx = _Received()
    sub = Subscriber(endpoint, topics=["cortex", STATUS_TOPIC]).open()
    truth_inlet = None
    interactive = sys.stdout.isatty() and not args.quiet
    try:
        # Open the truth stream first: the simulator waits for the daemon before streaming.
        truth_inlet = _truth_inlet(tag, args.seconds, workdir)
        daemon = subprocess.Popen(py + ["serve", str(cfg_path)], env=env, stdout=daemon_log,
                                  stderr=subprocess.STDOUT)
        _watch(rx, sub, truth_inlet, (daemon, sim), args, interactive)
        _terminate(daemon)
        rx.drain(sub, 0.5)  # in-flight estimates and the daemon's final status
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        if truth_inlet is not None:
            truth_inlet.close_stream()
        if monitor is not None and monitor.poll() is None:
            monitor.terminate()
            monitor.wait(10)
        _terminate(sim)
        sub_stats = sub.stats()
        sub.close()
        daemon_log.close()
        sim_log.close()
    if interactive:
        print()
    if daemon is None or daemon.returncode not in (0, None):
        raise SourceError(f"the daemon exited with code {daemon.returncode if daemon else None}; "
                          f"see {workdir}/daemon.log",
                          "read the log; run `rtdecode serve` by hand to see the error")
    if not rx.preds_t:
        raise SourceError(f"no predictions received; see {workdir}/daemon.log and simulator.log",
                          "check that LSL works on loopback (LSLAPICFG)")
    return _report(rx, sub_stats, meta.outputs, args)


def _write_config(workdir: Path, tag: str, model: Path, channels: int, rate_hz: float, endpoint: str,
                  args: argparse.Namespace) -> Path:
    """The demo daemon's TOML (source ``tag``, the shipped decoder, ``endpoint``), in ``workdir``."""
    path = workdir / "demo.toml"
    path.write_text(
        f'[source]\nname = "{tag}"\nchannels = {channels}\nrate_hz = {rate_hz}\n'
        f'resolve_timeout_s = 20\n\n[[decoders]]\nname = "cortex"\nmodel = "{model}"\n\n'
        f'[sink]\nendpoint = "{endpoint}"\nheartbeat_s = 0.5\n\n'
        f'[service]\nstats_interval_s = 10\nduration_s = {args.seconds + 30}\n'
        + (f'\n[record]\ndir = "{Path(args.record).resolve()}"\nprefix = "demo"\n' if args.record else ""),
        encoding="utf-8")
    return path


def _truth_inlet(tag: str, seconds: float, workdir: Path) -> pylsl.StreamInlet:
    """An open inlet on the simulator's true kinematics (``<tag>-kinematics``)."""
    found = pylsl.resolve_bypred(f"name='{tag}-kinematics'", 1, 30.0)
    if not found:
        raise SourceError(f"the simulator's kinematics stream did not appear; see {workdir}",
                          "check that LSL works on loopback (LSLAPICFG)")
    inlet = pylsl.StreamInlet(found[0], max_buflen=int(seconds) + 60,
                              processing_flags=pylsl.proc_clocksync)
    inlet.time_correction(10.0)  # prime the clock offset: the first pull won't block
    inlet.open_stream(10.0)
    return inlet


def _watch(rx: _Received, sub: Subscriber, truth_inlet: pylsl.StreamInlet,
           procs: tuple[subprocess.Popen, ...], args: argparse.Namespace, interactive: bool) -> None:
    """Receive estimates and truth for ``args.seconds`` after the first estimate (at most 90 s
    without one), or until a process in ``procs`` exits; show the live view."""
    t_begin = time.monotonic()
    t_first: float | None = None
    next_view = t_begin + 0.5
    while True:
        rx.drain(sub, 0.02)
        tk, ts = truth_inlet.pull_chunk(timeout=0.0, max_samples=100000, as_numpy=True)
        if len(ts):
            rx.truth_t.append(np.asarray(ts))
            rx.truth_y.append(np.array(tk))
        now = time.monotonic()
        if t_first is None and rx.preds_t:
            t_first = now
        if now >= next_view and not args.quiet:
            next_view = now + (0.25 if interactive else 5.0)
            _view(rx, now - t_begin, interactive)
        if t_first is not None and now - t_first >= args.seconds:
            return
        if any(p.poll() is not None for p in procs) or (t_first is None and now - t_begin > 90):
            return


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, wait up to 10 s, then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _report(rx: _Received, sub_stats: dict, outputs: list, args: argparse.Namespace) -> int:
    """Print (and save / write as JSON if asked) the summary; exit 0 when nothing was dropped."""
    summary = _summary(rx, sub_stats, outputs)
    if args.save:
        np.savez(args.save, pred_t=np.asarray(rx.preds_t), pred_y=np.vstack(rx.preds_y),
                 truth_t=np.concatenate(rx.truth_t) if rx.truth_t else np.zeros(0),
                 truth_y=np.concatenate(rx.truth_y) if rx.truth_y else np.zeros((0, 4)))
    _print_summary(summary)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        print(f"summary written to {args.json_out}")
    return 0 if summary["dropped"] == 0 else 1


def _start_monitor(py: list[str], endpoint: str, truth: str, args: argparse.Namespace,
                   env: dict[str, str], workdir: Path) -> subprocess.Popen | None:
    """Start ``rtdecode monitor`` on the demo's output and print its address (None without aiohttp)."""
    try:
        import aiohttp  # noqa: F401
    except ModuleNotFoundError:
        print("  live monitor: not available (pip install 'rtdecode[monitor]' for the browser view)")
        return None
    port = args.monitor_port if args.monitor_port and _port_free(args.monitor_port) else _free_port()
    log = open(workdir / "monitor.log", "w")  # noqa: SIM115 - the process writes it until the end
    proc = subprocess.Popen(py + ["monitor", endpoint, "--port", str(port), "--truth", truth,
                                  "--seconds", str(args.seconds + 120)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    end = time.monotonic() + 30
    while time.monotonic() < end and proc.poll() is None:  # say the address once it answers
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.1)
            continue
        print(f"  live monitor: http://127.0.0.1:{port}/  (open it in a browser on this machine)", flush=True)
        return proc
    print(f"  live monitor: did not start; see {workdir}/monitor.log", flush=True)
    return proc


class _Received:
    """What the viewer has received: fresh estimates, stale ones, status, truth."""

    def __init__(self) -> None:
        self.preds_t: list[float] = []
        self.preds_y: list[np.ndarray] = []
        self.ages: list[float] = []
        self.stale = 0
        self.flags_seen = 0
        self.status: dict = {}
        self.truth_t: list[np.ndarray] = []
        self.truth_y: list[np.ndarray] = []

    def drain(self, sub: Subscriber, timeout_s: float) -> None:
        """Take every message that is waiting (waits up to ``timeout_s`` for the first)."""
        m = sub.recv(timeout_s=timeout_s)
        while m is not None:
            now = pylsl.local_clock()
            if m.status is not None:
                self.status = m.status
            elif m.values is not None:
                self.flags_seen |= int(m.flags)
                if m.flags & Flags.STALE:
                    self.stale += 1  # a safe value, not an estimate: not in latency / R²
                else:
                    self.preds_t.append(m.t_source)
                    self.preds_y.append(m.values.copy())
                    self.ages.append(now - m.t_source)
            m = sub.recv(timeout_s=0.0)


def _align(preds_t: list[float], preds_y: list[np.ndarray], truth_t: list[np.ndarray],
           truth_y: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Pair each prediction with the true kinematics sample that has the same LSL time."""
    if not truth_t or not preds_t:
        return None, None
    tt = np.concatenate(truth_t)
    ty = np.concatenate(truth_y)
    pt = np.asarray(preds_t)
    py = np.vstack(preds_y)
    hi = np.clip(np.searchsorted(tt, pt), 0, tt.size - 1)
    lo = np.clip(hi - 1, 0, tt.size - 1)
    idx = np.where(np.abs(tt[lo] - pt) < np.abs(tt[hi] - pt), lo, hi)  # nearest sample
    ok = np.abs(tt[idx] - pt) < 2.5e-4  # same sample; the two inlets' clock corrections differ by µs
    return py[ok], ty[idx[ok]]


def _view(rx: _Received, elapsed: float, interactive: bool) -> None:
    if not rx.preds_y:
        line = (f"  {elapsed:5.1f} s  waiting for predictions ... "
                f"(daemon: {rx.status.get('state', 'starting')})")
    else:
        yhat = rx.preds_y[-1]
        a = np.asarray(rx.ages[-200:]) * 1e3
        tr = ""
        p, t = _align(rx.preds_t[-1:], rx.preds_y[-1:], rx.truth_t[-5:], rx.truth_y[-5:])
        if p is not None and t is not None and len(p):
            tr = f" | true {t[0, 2]:+6.1f} {t[0, 3]:+6.1f}"
        line = (f"  {elapsed:5.1f} s  vx,vy pred {yhat[0]:+6.1f} {yhat[1]:+6.1f} cm/s{tr} | "
                f"age p50 {np.percentile(a, 50):5.2f} max {a.max():5.2f} ms | msgs {len(rx.preds_y)}")
    if interactive:
        print("\r" + line.ljust(112), end="", flush=True)
    else:
        print(line, flush=True)


def _summary(rx: _Received, sub_stats: dict, outputs: list) -> dict:
    a = np.asarray(rx.ages) * 1e3
    p, t = _align(rx.preds_t, rx.preds_y, rx.truth_t, rx.truth_y)
    quality: dict = {"metric": "R2 of decoded vs true velocity (first second skipped)",
                     "per_output": {}}
    if p is not None and t is not None and len(p) > 100:
        skip = 50  # the first second: filters and the model's receptive field fill
        for j, o in enumerate(outputs):
            col = 2 + j  # truth columns: px py vx vy; the model decodes vx vy
            quality["per_output"][o.name] = round(float(r2_per_column(t[skip:, col], p[skip:, j])), 4)
        quality["R2"] = round(float(np.mean(list(quality["per_output"].values()))), 4)
        quality["n_aligned"] = int(len(p))
    else:
        quality["R2"] = None
    st = rx.status
    inp = st.get("input", {})
    topic_stats = sub_stats.get("cortex", {})
    lost_msgs = int(topic_stats.get("lost", 0))
    dropped = (lost_msgs + int(st.get("send_dropped", 0)) + int(inp.get("missing_samples", 0))
               + int(inp.get("index_lost", 0)))
    return {
        "samples_in": int(inp.get("samples_in", 0)),
        "messages_out": int(st.get("messages_out", len(rx.preds_t))),
        "messages_received": len(rx.preds_t),
        "stale_messages_received": rx.stale,
        "dropped": dropped,
        "dropped_detail": {"messages_lost_in_transit": lost_msgs,
                           "send_dropped": int(st.get("send_dropped", 0)),
                           "input_gaps": int(inp.get("gaps", 0)),
                           "input_missing_samples": int(inp.get("missing_samples", 0))},
        "latency_ms": {"p50": round(float(np.percentile(a, 50)), 3),
                       "p99": round(float(np.percentile(a, 99)), 3),
                       "p999": round(float(np.percentile(a, 99.9)), 3),
                       "max": round(float(a.max()), 3),
                       "what": "receive time at the subscriber - LSL time of the newest input sample"},
        "daemon_latency_ms": st.get("latency_ms", {}),
        "quality": quality,
        "flags_seen": [f.name for f in Flags if f and rx.flags_seen & f],
        "machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
    }


def _print_summary(s: dict) -> None:
    lat = s["latency_ms"]
    q = s["quality"]
    print("── rtdecode demo summary " + "─" * 40)
    print(f"  samples in      {s['samples_in']}")
    print(f"  messages out    {s['messages_out']} (received {s['messages_received']})")
    print(f"  dropped         {s['dropped']}  {s['dropped_detail']}")
    print(f"  latency (ms)    p50 {lat['p50']:.3f}  p99 {lat['p99']:.3f}  p99.9 {lat['p999']:.3f}  "
          f"max {lat['max']:.3f}   (input sample → subscriber)")
    print(f"  quality         R² {q.get('R2')}  {q.get('per_output')}")
