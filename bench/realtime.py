"""Real-time check of the streaming core: can the daemon keep up, with zero drops?

A replay process streams a recording at its true rate with channel 0 replaced by the
sample index (so the daemon counts lost/duplicated input samples exactly), the daemon
under test decodes it with a model that carries a realistic HD-sEMG chain, and this
process subscribes and records every message's age (receive − LSL time of the newest
input sample). The daemon's CPU share and resident memory are read from /proc.

    python bench/realtime.py --channels 64 --rate 2048 --seconds 60
    python bench/realtime.py --channels 256 --rate 1000 --seconds 60

The fuller harness (push-time latency, bare-transport baseline, per-stage timing, sweeps,
plots) is ``python -m bench`` (bench/harness.py); this script stays as the long soak-style check.

Writes ``bench/results/realtime-<C>ch-<rate>hz.json``. Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.models import linear_model  # noqa: E402
from bench.sysinfo import cpu_model, proc_cpu_s, proc_rss_mb  # noqa: E402,F401
from rtdecode.lsl import lsl_config_in_use, pylsl  # noqa: E402
from rtdecode.sinks.client import Subscriber  # noqa: E402
from rtdecode.sinks.protocol import STATUS_TOPIC  # noqa: E402
from rtdecode.types import Flags  # noqa: E402

OTB = ROOT.parent / "shared" / "data" / "openhdemg_otb_hdsemg_force" / "otb_testfile.mat"


_proc_cpu_s = proc_cpu_s
_proc_rss_mb = proc_rss_mb


def _recording(tmp: Path, channels: int, rate: float) -> tuple[Path, str]:
    """The real HD-sEMG recording for 64 ch @ 2048 Hz where available, else seeded noise."""
    if channels == 64 and rate == 2048.0 and OTB.exists():
        return OTB, "openhdemg otb_testfile.mat (real HD-sEMG, 64 ch, 2048 Hz), looped"
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((int(rate * 20), channels)) * 50.0).astype(np.float32)
    path = tmp / "noise.npz"
    np.savez(path, x=x, fs=rate)
    return path, f"seeded Gaussian noise, {channels} ch, {rate:g} Hz, 20 s, looped"


def envelope_chain(decimate: int, band_top_hz: float) -> list[dict]:
    """The benchmarks' HD-sEMG envelope chain: notch, 20 Hz–``band_top_hz`` band-pass, RMS, decimation."""
    return [{"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45.0, 55.0]},
            {"kind": "butter", "btype": "bandpass", "order": 2, "cutoff_hz": [20.0, band_top_hz]},
            {"kind": "rms", "window_s": 0.05},
            {"kind": "decimate", "factor": decimate},
            {"kind": "standardize", "mean": 20.0, "std": 15.0}]


def write_serve_config(path: Path, *, name: str, channels: int, rate_hz: float, model: Path,
                       endpoint: str, resolve_timeout_s: float, service: str = "") -> Path:
    """A ``rtdecode serve`` config for one decoder ``dec`` on stream ``name`` (index in channel 0)."""
    path.write_text(
        f'[source]\nname = "{name}"\nchannels = {channels}\nrate_hz = {rate_hz}\nindex_channel = 0\n'
        f'resolve_timeout_s = {resolve_timeout_s:g}\n\n[[decoders]]\nname = "dec"\nmodel = "{model}"\n\n'
        f'[sink]\nendpoint = "{endpoint}"\nsndhwm = 1000000\nheartbeat_s = 1.0\n\n'
        f"[service]\nstats_interval_s = 10\n{service}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--rate", type=float, default=2048.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--decimate", type=int, default=16, help="chain decimation factor")
    ap.add_argument("--publish-every-sample", action="store_true",
                    help="no decimation: one message per input sample")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rtdecode-bench-"))
    rate, ch = args.rate, args.channels
    rec_path, rec_desc = _recording(tmp, ch, rate)
    if args.publish_every_sample:
        chain: list[dict] = [{"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": 20.0}]
    else:
        chain = envelope_chain(args.decimate, min(450.0, 0.45 * rate / 2))
    model = linear_model(tmp / "bench.onnx", rate_hz=rate, channels=ch, chain=chain, lags=10, n_out=2)
    name = f"rtdecode-bench-{os.getpid()}"
    endpoint = f"ipc://{tmp}/pub.sock"
    cfg = write_serve_config(tmp / "bench.toml", name=name, channels=ch, rate_hz=rate, model=model,
                             endpoint=endpoint, resolve_timeout_s=30)
    env = dict(os.environ, LSLAPICFG=lsl_config_in_use())
    py = [sys.executable, "-m", "rtdecode", "--log-level", "INFO"]
    dlog = open(tmp / "daemon.log", "w")  # noqa: SIM115
    ages: list[float] = []
    stale = 0
    status: dict = {}
    with Subscriber(endpoint, topics=["dec", STATUS_TOPIC]) as sub:
        daemon = subprocess.Popen(py + ["serve", str(cfg)], env=env, stderr=dlog)
        replay = subprocess.Popen(py + ["replay", str(rec_path), "--name", name, "--loop",
                                        "--index-channel", "0", "--seconds", str(args.seconds),
                                        "--wait-consumer-s", "60"], env=env,
                                  stderr=open(tmp / "replay.log", "w"))  # noqa: SIM115
        t_first = None
        cpu0 = rss0 = 0.0
        wall0 = 0.0
        rss_samples = []
        next_rss = 0.0
        while replay.poll() is None:
            m = sub.recv(timeout_s=0.2)
            now = time.perf_counter()
            if m is None:
                continue
            if m.status is not None:
                status = m.status
                continue
            if m.flags & Flags.STALE:  # safe values after the replay ends are not estimates
                stale += 1
                continue
            ages.append(pylsl.local_clock() - m.t_source)
            if t_first is None:
                t_first = now
                cpu0, wall0, rss0 = _proc_cpu_s(daemon.pid), now, _proc_rss_mb(daemon.pid)
                next_rss = now + 5
            elif now >= next_rss:
                rss_samples.append(round(_proc_rss_mb(daemon.pid), 1))
                next_rss = now + 5
        cpu1, wall1, rss1 = _proc_cpu_s(daemon.pid), time.perf_counter(), _proc_rss_mb(daemon.pid)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:  # the last heartbeat with the final counters
            m = sub.recv(timeout_s=0.1)
            if m is not None and m.status is not None:
                status = m.status
            elif m is not None and m.flags & Flags.STALE:
                stale += 1
            elif m is not None:
                ages.append(pylsl.local_clock() - m.t_source)
        daemon.terminate()
        daemon.wait(10)
        sub_stats = sub.stats()
    a = np.asarray(ages) * 1e3
    inp = status.get("input", {})
    result = {
        "benchmark": "realtime",
        "what": "replay (index channel) -> rtdecode serve -> ZeroMQ subscriber, all on one host",
        "recording": rec_desc,
        "channels": ch, "rate_hz": rate, "seconds": args.seconds,
        "chain": chain, "model": "causal linear filter, 10 lags, 2 outputs",
        "samples_in": inp.get("samples_in"),
        "input_index_lost": inp.get("index_lost"), "input_index_dup": inp.get("index_dup"),
        "input_timestamp_gaps": inp.get("gaps"),
        "messages_received": int(a.size),
        "stale_messages_after_end": stale,
        "messages_lost_in_transit": sub_stats.get("dec", {}).get("lost"),
        "latency_ms": {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
                       "p99": float(np.percentile(a, 99)), "p999": float(np.percentile(a, 99.9)),
                       "max": float(a.max()),
                       "what": "receive at subscriber - LSL time of newest input sample"},
        "daemon_cpu_share": (cpu1 - cpu0) / (wall1 - wall0) if wall1 > wall0 else None,
        "daemon_rss_mb": {"start": round(rss0, 1), "end": round(rss1, 1), "samples": rss_samples},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-every" if args.publish_every_sample else ""
    out = args.out / f"realtime-{ch}ch-{rate:g}hz{suffix}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("samples_in", "input_index_lost", "input_index_dup",
                                             "messages_received", "messages_lost_in_transit",
                                             "latency_ms", "daemon_cpu_share", "daemon_rss_mb")},
                     indent=1))
    print(f"wrote {out}  (logs in {tmp})")


if __name__ == "__main__":
    main()
