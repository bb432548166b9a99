"""Soak: the daemon for a long run with periodic source dropouts (a benchmark, not a test).

A producer process replays seeded noise (256 ch at 1 kHz by default, channel 0 = sample
index) through a real LSL outlet; every ``--dropout-every`` seconds it is killed (SIGKILL: a
crashed rig or a pulled cable, the outlet vanishes without a goodbye) and ``--dropout-s``
seconds later a new producer starts — alternately with the same ``source_id`` (liblsl
recovers the connection) and with a new one (the daemon's resolver finds it). This process
subscribes to the daemon's output and records, per dropout, the time to detect (first STALE
message after the kill) and to recover (first fresh estimate after the new outlet's first
push), plus input drops (index channel), messages lost in transit, reconnections, stale
episodes, old samples dropped, and the daemon's resident memory over time.

    python bench/soak.py                       # 600 s, dropout every 60 s for 5 s
    python bench/soak.py --seconds 30 --dropout-every 10 --dropout-s 3

Reuses the bench harness: ``bench/realtime.py``'s recording and chain, ``bench/models.py``,
``bench/sysinfo.py`` (/proc readers, CPU model). Writes
``bench/results/soak-<C>ch-<rate>hz.json``. Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.models import linear_model  # noqa: E402
from bench.realtime import _recording, envelope_chain, write_serve_config  # noqa: E402
from bench.sysinfo import cpu_model, proc_cpu_s, proc_rss_mb  # noqa: E402
from rtdecode.lsl import lsl_config_in_use, pylsl  # noqa: E402
from rtdecode.sinks.client import Subscriber  # noqa: E402
from rtdecode.sinks.protocol import STATUS_TOPIC  # noqa: E402
from rtdecode.types import Flags  # noqa: E402


def produce(args: argparse.Namespace) -> int:
    """Child mode: replay the recording (looped, index channel 0) until killed."""
    from rtdecode.io.readers import read_recording
    from rtdecode.sources.pacing import stop_on_signals
    from rtdecode.sources.player import Player

    rec = read_recording(args.data)
    stop = threading.Event()
    with stop_on_signals(stop), Player(rec, name=args.name, source_id=args.source_id, loop=True,
                                       index_channel=0) as player:
        sys.stdout.write(f"t0 {pylsl.local_clock():.6f}\n")
        sys.stdout.flush()
        player.run(stop)
    return 0


def _start_producer(py: list[str], env: dict, args: argparse.Namespace, data: Path, name: str,
                    source_id: str, log: Path) -> tuple[subprocess.Popen, float]:
    p = subprocess.Popen(py + [__file__, "--produce", "--name", name, "--source-id", source_id,
                               "--data", str(data)], env=env, stdout=subprocess.PIPE, text=True,
                         stderr=open(log, "a"))  # noqa: SIM115
    assert p.stdout is not None
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "t0":
        raise RuntimeError(f"producer did not start (see {log})")
    return p, float(line[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=600.0, help="length of the soak")
    ap.add_argument("--dropout-every", type=float, default=60.0, help="kill the producer every S s")
    ap.add_argument("--dropout-s", type=float, default=5.0, help="restart it after this long")
    ap.add_argument("--decimate", type=int, default=10, help="chain decimation (100 Hz output)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--source-id", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.produce:
        sys.exit(produce(args))

    tmp = Path(tempfile.mkdtemp(prefix="rtdecode-soak-"))
    rate, ch = args.rate, args.channels
    data, desc = _recording(tmp, ch, rate)
    chain = envelope_chain(args.decimate, min(450.0, 0.45 * rate))
    model = linear_model(tmp / "soak.onnx", rate_hz=rate, channels=ch, chain=chain, lags=10, n_out=2)
    name = f"rtdecode-soak-{os.getpid()}"
    endpoint = f"ipc://{tmp}/pub.sock"
    cfg = write_serve_config(tmp / "soak.toml", name=name, channels=ch, rate_hz=rate, model=model,
                             endpoint=endpoint, resolve_timeout_s=60,
                             service='stale_after_s = 0.25\nsafe_value = "hold"\non_reconnect = "reset"\n')
    env = dict(os.environ, LSLAPICFG=lsl_config_in_use())
    py = [sys.executable]
    dlog = open(tmp / "daemon.log", "w")  # noqa: SIM115
    plog = tmp / "producer.log"
    ages: list[float] = []
    stale_msgs = 0
    status: dict = {}
    dropouts: list[dict] = []
    rss: list[tuple[float, float]] = []
    with Subscriber(endpoint, topics=["dec", STATUS_TOPIC]) as sub:
        daemon = subprocess.Popen(py + ["-m", "rtdecode", "--log-level", "INFO", "serve", str(cfg)],
                                  env=env, stderr=dlog)
        producer, t0_prod = _start_producer(py, env, args, data, name, "soak-rig", plog)
        n_restarts = 0
        t_begin = time.monotonic()
        next_drop = t_begin + args.dropout_every
        next_rss = t_begin
        cpu0 = proc_cpu_s(daemon.pid)
        cur: dict | None = None  # the dropout being measured
        stale_now = False
        while time.monotonic() - t_begin < args.seconds:
            now = time.monotonic()
            if now >= next_rss:
                rss.append((round(now - t_begin, 1), round(proc_rss_mb(daemon.pid), 1)))
                next_rss = now + 5.0
            if producer is None and cur is not None and now >= cur["_restart_at"]:
                n_restarts += 1
                sid = "soak-rig" if n_restarts % 2 == 0 else f"soak-rig-{n_restarts}"
                producer, cur["_t0_new"] = _start_producer(py, env, args, data, name, sid, plog)
                cur["source_id"] = "same" if sid == "soak-rig" else "new"
            elif producer is not None and now >= next_drop:
                t_kill = pylsl.local_clock()
                producer.send_signal(signal.SIGKILL)
                producer.wait(10)
                producer = None
                cur = {"_t_kill": t_kill, "_restart_at": now + args.dropout_s,
                       "at_s": round(now - t_begin, 1)}
                dropouts.append(cur)
                next_drop = now + args.dropout_every
            m = sub.recv(timeout_s=0.05)
            if m is None:
                continue
            if m.status is not None:
                status = m.status
                continue
            if m.flags & Flags.STALE:
                stale_msgs += 1
                if cur is not None and "detect_s" not in cur and m.t_publish >= cur["_t_kill"]:
                    cur["detect_s"] = round(m.t_publish - cur["_t_kill"], 4)
                stale_now = True
                continue
            ages.append(pylsl.local_clock() - m.t_source)
            if stale_now and cur is not None and "_t0_new" in cur and "recover_s" not in cur:
                cur["recover_s"] = round(m.t_publish - cur["_t0_new"], 4)
            stale_now = False
        cpu1 = proc_cpu_s(daemon.pid)
        rss_end = proc_rss_mb(daemon.pid)
        end = time.monotonic() + 2.5
        while time.monotonic() < end:  # the last heartbeat with the final counters
            m = sub.recv(timeout_s=0.1)
            if m is not None and m.status is not None:
                status = m.status
        if producer is not None:
            producer.terminate()
            producer.wait(10)
        daemon.terminate()
        rc = daemon.wait(10)
        sub_stats = sub.stats()
    a = np.asarray(ages) * 1e3
    inp = status.get("input", {})
    for d in dropouts:
        for k in [k for k in d if k.startswith("_")]:
            del d[k]
    det = [d["detect_s"] for d in dropouts if "detect_s" in d]
    rec = [d["recover_s"] for d in dropouts if "recover_s" in d]
    result = {
        "benchmark": "soak",
        "what": "producer (killed and restarted) -> rtdecode serve -> ZeroMQ subscriber, one host",
        "recording": desc, "channels": ch, "rate_hz": rate, "seconds": args.seconds,
        "dropout_every_s": args.dropout_every, "dropout_s": args.dropout_s,
        "chain": chain, "model": "causal linear filter, 10 lags, 2 outputs",
        "daemon_exit_code": rc,
        "samples_in": inp.get("samples_in"),
        "input_index_lost": inp.get("index_lost"), "input_index_dup": inp.get("index_dup"),
        "input_timestamp_gaps": inp.get("gaps"), "time_jumps": inp.get("time_jumps"),
        "reconnects_by_resolver": inp.get("reconnects"),
        "reconnect_rejected": inp.get("reconnect_rejected"),
        "stale_episodes": status.get("stale_episodes"), "stale_messages": status.get("stale_messages"),
        "old_samples_dropped": status.get("old_samples_dropped"),
        "send_dropped": status.get("send_dropped"),
        "fresh_messages_received": int(a.size), "stale_messages_received": stale_msgs,
        "messages_lost_in_transit": sub_stats.get("dec", {}).get("lost"),
        "dropouts": dropouts,
        "detect_s": {"min": min(det), "median": float(np.median(det)), "max": max(det)} if det else None,
        "recover_s": {"min": min(rec), "median": float(np.median(rec)), "max": max(rec),
                      "what": "first fresh estimate - new producer's first push"} if rec else None,
        "latency_ms": ({"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
                        "max": float(a.max()),
                        "what": "receive at subscriber - LSL time of newest input sample"}
                       if a.size else None),
        "daemon_cpu_share": (cpu1 - cpu0) / args.seconds,
        "daemon_rss_mb": {"start": rss[0][1] if rss else None, "end": round(rss_end, 1),
                          "max": max(r for _, r in rss) if rss else None,
                          "samples_t_s_mb": rss},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"soak-{ch}ch-{rate:g}hz.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("samples_in", "input_index_lost", "input_index_dup",
                                             "stale_episodes", "reconnects_by_resolver",
                                             "old_samples_dropped", "messages_lost_in_transit",
                                             "detect_s", "recover_s", "daemon_rss_mb",
                                             "daemon_exit_code")}, indent=1))
    print(f"wrote {out}  (logs in {tmp})")


if __name__ == "__main__":
    main()
