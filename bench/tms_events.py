"""TMS event latency: marker pushed → event message received, beside the post-pulse window.

One run, real parts: this process pushes a 15-channel EMG stream (2 kHz, 1-ms chunks, noise
with a 1-mV MEP 22 ms after each pulse) and a JSON marker per pulse on LSL; ``rtdecode serve``
(its own process) measures each pulse and publishes the event over ZeroMQ; a subscriber thread
here receives it. Reported, per pulse:

- ``event_ms``: marker push → event received. It cannot be shorter than the post-pulse
  window (``window_end_ms``, 50 ms by default): the measure needs the window's last sample;
- ``after_window_ms``: push of the chunk holding the window's last sample → event received
  (what the service adds to the wait for the data);

and, measured in the same run on the same streams by bare pylsl inlets in this process
(the transport floor), ``baseline_marker_ms`` (marker push → marker pulled) and
``baseline_sample_ms`` (push of a window's last chunk → that sample pulled).
p50 / p90 / p99 / p99.9 / max / mean in ms.

    python -m bench.tms_events                      # 500 pulses at 10 Hz → bench/results/tms_events.json
    python -m bench.tms_events --pulses 20 --out /tmp/t.json   # a smoke run

The lead runs it on a quiet machine; numbers from a loaded machine are not results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.sysinfo import machine
from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.sources.markers import MarkerOutlet
from rtdecode.sources.pacing import Pacer

ROOT = Path(__file__).resolve().parents[1]
RATE = 2000.0
CHANNELS = 15
CHUNK = 2
WINDOW_END_MS = 50.0


def _stats_ms(a: np.ndarray) -> dict[str, float | int | None]:
    if a.size == 0:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None, "mean": None, "n": 0}
    q = np.percentile(a, [50, 90, 99, 99.9]) * 1e3
    return {"p50": round(float(q[0]), 3), "p90": round(float(q[1]), 3), "p99": round(float(q[2]), 3),
            "p999": round(float(q[3]), 3), "max": round(float(a.max() * 1e3), 3),
            "mean": round(float(a.mean() * 1e3), 3), "n": int(a.size)}


class _Producer:
    """EMG outlet + marker outlet; logs the push time of every chunk and marker."""

    def __init__(self, name: str, pulses: int, isi_s: float) -> None:
        info = pylsl.StreamInfo(name, "EMG", CHANNELS, RATE, pylsl.cf_float32, f"bench:{name}")
        self.outlet = pylsl.StreamOutlet(info, 0, 360)
        self.markers = MarkerOutlet(f"{name}-markers").open()
        self.pulse_at = (np.round((0.5 + isi_s * np.arange(pulses)) * RATE)).astype(int)
        self.n = int(self.pulse_at[-1] + 0.5 * RATE)
        rng = np.random.default_rng(0)
        self.x = (rng.standard_normal((self.n, CHANNELS)) * 5.0).astype(np.float32)
        u = np.arange(24) / 24.0
        mep = (np.sin(2 * np.pi * u) * np.sin(np.pi * u) * 1000.0).astype(np.float32)
        for k in self.pulse_at:  # a 1-mV response 22 ms after each pulse
            self.x[k + 44:k + 68] += mep[:, None]
        self.chunk_push = np.full(self.n // CHUNK + 1, np.nan)
        self.marker_push = np.full(pulses, np.nan)
        self.t0 = 0.0

    def run(self, stop: threading.Event) -> None:
        pacer = Pacer(RATE, CHUNK)
        self.t0 = pacer.start()
        k = 0
        for c in range(self.n // CHUNK):
            i = c * CHUNK
            pacer.wait_until(pacer.sample_time(i + CHUNK), stop)
            if stop.is_set():
                return
            self.outlet.push_chunk(self.x[i:i + CHUNK], [pacer.sample_time(i + j) for j in range(CHUNK)])
            self.chunk_push[c] = pylsl.local_clock()
            while k < len(self.pulse_at) and self.pulse_at[k] < i + CHUNK:
                self.markers.push(json.dumps({"pulse": k}), pacer.sample_time(int(self.pulse_at[k])))
                self.marker_push[k] = pylsl.local_clock()
                k += 1


def _baseline(name: str, stream: str, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    """A bare inlet: (pushed LSL timestamp, local receive time) of everything pulled."""
    found = pylsl.resolve_byprop("name", stream, 1, 20.0)
    if not found:
        return
    inlet = pylsl.StreamInlet(found[0], max_buflen=10)  # raw timestamps: as pushed, same machine
    inlet.open_stream(10.0)
    while not stop.is_set():
        _, ts = inlet.pull_chunk(timeout=0.01)
        if ts:
            now = pylsl.local_clock()
            out.extend((t, now) for t in ts)


def _wait_running(sub: Subscriber, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = sub.recv(0.1)
        if m is not None and m.status is not None and m.status.get("state") == "running":
            return
    raise RuntimeError(f"the daemon did not reach 'running' within {timeout_s:g} s")


def run(pulses: int, isi_s: float, out_path: Path, log: Any = print) -> dict[str, Any]:
    """One benchmark run; writes and returns the JSON result."""
    name = f"bench-tms-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-tms-"))
    endpoint = f"ipc://{work}/pub.sock"
    cfg = work / "serve.toml"
    cfg.write_text(f'[source]\nname = "{name}"\nresolve_timeout_s = 30\n\n[sink]\nendpoint = '
                   f'"{endpoint}"\nheartbeat_s = 0.5\nsndhwm = 100000\n\n[service]\nstats_interval_s = 60\n'
                   'on_behind = "none"\n'
                   f'\n[tms]\n[tms.markers]\nname = "{name}-markers"\n')
    env = dict(os.environ, LSLAPICFG=os.environ.get("LSLAPICFG", str(ROOT / "rtdecode/data/lsl_api.cfg")))
    prod = _Producer(name, pulses, isi_s)
    stop = threading.Event()
    base_m: list[tuple[float, float]] = []
    base_s: list[tuple[float, float]] = []
    events: dict[int, tuple[float, int]] = {}
    status: dict[str, Any] = {}
    daemon = subprocess.Popen([sys.executable, "-m", "rtdecode", "--log-level", "WARNING", "serve",
                               str(cfg)], env=env, stderr=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=_baseline, args=(name, n, stop, o), daemon=True)
               for n, o in ((f"{name}-markers", base_m), (name, base_s))]
    try:
        with Subscriber(endpoint) as sub:
            for t in threads:
                t.start()
            _wait_running(sub, 60.0)  # the daemon has both inlets open
            time.sleep(0.5)
            feeder = threading.Thread(target=prod.run, args=(stop,), daemon=True)
            feeder.start()
            log(f"pushing {pulses} pulses at {1 / isi_s:g} Hz ({prod.n / RATE:.1f} s)")
            end = time.monotonic() + prod.n / RATE + 30
            while len(events) < pulses and time.monotonic() < end:
                m = sub.recv(0.1)
                if m is not None and m.event is not None:
                    events[m.event.pulse_id] = (pylsl.local_clock(), int(m.flags))
                elif m is not None and m.status is not None and "tms" in m.status:
                    status = m.status["tms"]
            feeder.join(5)
    finally:
        stop.set()
        daemon.terminate()
        err = daemon.communicate(timeout=30)[1]
    result = _analyse(prod, events, base_m, base_s, status)
    result.update(machine=machine(), config={"pulses": pulses, "isi_s": isi_s, "rate_hz": RATE,
                                             "channels": CHANNELS, "chunk_samples": CHUNK,
                                             "window_end_ms": WINDOW_END_MS},
                  daemon_stderr_tail=err[-2000:])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2))
    return result


def _analyse(prod: _Producer, events: dict[int, tuple[float, int]], base_m: list, base_s: list,
             status: dict[str, Any]) -> dict[str, Any]:
    ids = np.array(sorted(events), dtype=int)
    recv = np.array([events[i][0] for i in ids])
    last = (prod.pulse_at[ids] + int(round(WINDOW_END_MS * RATE / 1e3))) // CHUNK
    ev = recv - prod.marker_push[ids]
    after = recv - prod.chunk_push[last]
    pulled = dict(base_m)  # marker timestamp → local time pulled
    stamps = [prod.t0 + k / RATE for k in prod.pulse_at.tolist()]
    bm = np.array([pulled[t] - prod.marker_push[k] for k, t in enumerate(stamps) if t in pulled])
    samples = dict(base_s)
    bs = np.array([samples[t] - prod.chunk_push[c] for c in last.tolist()
                   if (t := prod.t0 + (c * CHUNK + CHUNK - 1) / RATE) in samples])
    flagged = sum(1 for _, f in events.values() if f & 0x600)
    return {"pulses": {"sent": int(np.isfinite(prod.marker_push).sum()), "received": int(ids.size),
                       "flagged_no_samples_or_outage": flagged},
            "event_ms": _stats_ms(ev[np.isfinite(ev)]),
            "after_window_ms": _stats_ms(after[np.isfinite(after)]),
            "baseline_marker_ms": _stats_ms(bm[np.isfinite(bm)]),
            "baseline_sample_ms": _stats_ms(bs[np.isfinite(bs)]),
            "daemon_status_tms": status}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pulses", type=int, default=500)
    ap.add_argument("--isi-s", type=float, default=0.1, help="interval between pulses, s")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tms_events.json")
    args = ap.parse_args(argv)
    r = run(args.pulses, args.isi_s, args.out)
    print(json.dumps({k: r[k] for k in ("pulses", "event_ms", "after_window_ms", "baseline_marker_ms",
                                        "baseline_sample_ms")}, indent=2))
    return 0 if r["pulses"]["received"] == r["pulses"]["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
