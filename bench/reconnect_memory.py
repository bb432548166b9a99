"""Reproducer: the daemon's resident memory across reconnections (issue 13, item 4).

The daemon decodes a 256-channel 1 kHz stream; the producer is killed (SIGKILL) and restarted
``--cycles`` times, alternately with the same ``source_id`` (liblsl recovers the inlet) and a
new one (the daemon's resolver switches inlets). The daemon's RSS is read once the stream has
flowed for ``--settle-s`` after each restart, so each number is the steady state after one
more reconnection; the JSON lists them with the per-reconnection steps.

    python bench/reconnect_memory.py                          # 9 reconnections
    python bench/reconnect_memory.py --env MALLOC_ARENA_MAX=2 # a variant of the daemon's env

Memory, not time: the numbers do not depend on the machine's load. Writes
``bench/results/reconnect-memory[-<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.models import linear_model  # noqa: E402
from bench.realtime import _recording, envelope_chain, write_serve_config  # noqa: E402
from bench.soak import _start_producer  # noqa: E402
from bench.sysinfo import proc_rss_mb  # noqa: E402
from rtdecode.lsl import lsl_config_in_use  # noqa: E402
from rtdecode.sinks.client import Subscriber  # noqa: E402
from rtdecode.sinks.protocol import STATUS_TOPIC  # noqa: E402


def _flow(sub: Subscriber, seconds: float) -> int:
    """Receive for ``seconds``; returns the number of fresh estimates."""
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        m = sub.recv(timeout_s=0.05)
        if m is not None and m.values is not None and not m.flags:
            n += 1
    return n


def main() -> None:
    """Run the cycles, print and write the RSS per reconnection."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=9, help="reconnections")
    ap.add_argument("--settle-s", type=float, default=4.0, help="flow time before each RSS reading")
    ap.add_argument("--gap-s", type=float, default=1.5, help="producer down this long")
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the daemon's environment")
    ap.add_argument("--tag", default="", help="suffix of the result file")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rtdecode-reconnect-"))
    rate, ch = 1000.0, args.channels
    data, _ = _recording(tmp, ch, rate)
    model = linear_model(tmp / "m.onnx", rate_hz=rate, channels=ch, chain=envelope_chain(10, 450.0),
                         lags=10, n_out=2)
    name = f"rtdecode-reconnect-{os.getpid()}"
    endpoint = f"ipc://{tmp}/pub.sock"
    cfg = write_serve_config(tmp / "d.toml", name=name, channels=ch, rate_hz=rate, model=model,
                             endpoint=endpoint, resolve_timeout_s=60,
                             service='stale_after_s = 0.25\non_reconnect = "reset"\n')
    env = dict(os.environ, LSLAPICFG=lsl_config_in_use())
    env.update(dict(kv.split("=", 1) for kv in args.env))
    plog = tmp / "producer.log"
    readings = []
    pargs = argparse.Namespace()
    with Subscriber(endpoint, topics=["dec", STATUS_TOPIC]) as sub, open(tmp / "daemon.log", "w") as dlog:
        daemon = subprocess.Popen([sys.executable, "-m", "rtdecode", "serve", str(cfg)], env=env, stderr=dlog)
        try:
            for i in range(args.cycles + 1):
                sid = "rig" if i % 2 == 0 else f"rig-{i}"
                producer, _ = _start_producer([sys.executable], env, pargs, data, name, sid, plog)
                fresh = _flow(sub, args.settle_s)
                readings.append({"cycle": i, "source_id": "same" if sid == "rig" else "new",
                                 "rss_mb": round(proc_rss_mb(daemon.pid), 2), "fresh_estimates": fresh})
                print(f"cycle {i} ({readings[-1]['source_id']} source_id): RSS {readings[-1]['rss_mb']} MB, "
                      f"{fresh} fresh estimates", flush=True)
                producer.send_signal(signal.SIGKILL)
                producer.wait(10)
                _flow(sub, args.gap_s)
        finally:
            daemon.terminate()
            daemon.wait(20)
    rss = [r["rss_mb"] for r in readings]
    steps = [round(b - a, 2) for a, b in zip(rss, rss[1:], strict=False)]
    res = {"benchmark": "reconnect_memory", "channels": ch, "rate_hz": rate, "cycles": args.cycles,
           "env": args.env, "readings": readings, "steps_mb": steps,
           "growth_mb": round(rss[-1] - rss[0], 2), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = args.out / f"reconnect-memory{'-' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(f"growth {res['growth_mb']} MB over {args.cycles} reconnections; steps {steps} → {out}")


if __name__ == "__main__":
    main()
