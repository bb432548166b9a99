"""Cost of code that runs rarely: the daemon's per-frame path, back to back vs after a gap.

A decimating decoder (the shipped Gamma CNN: 2048 Hz in, 102.4 Hz frames) runs its model,
encoder and ZeroMQ send once every ~10 ms, while the bare transport runs its few calls every
tick. This measures, in one process and without LSL, how much slower the same calls are when
other time passes between them:

- ``publish``: ``pylsl.local_clock()``, ``EstimateEncoder.encode`` and ``Publisher.send`` to a
  subscriber on ``ipc://`` (received by a thread), each timed, with a gap of 0 / 1 / 10 ms of
  busy-waiting (the CPU stays busy, nothing sleeps) before every message;
- ``model``: the shipped model's chain on 2-sample chunks (one model frame per 10 chunks)
  and its model step, with the chunks back to back, separated by a 1 ms busy-wait, or by a
  1 ms sleep; each with ``keep_warm`` (a scratch step on every chunk that completes no frame)
  off and on.

Times are p50 / p90 / p99 / p99.9 / max / mean in microseconds of ``time.perf_counter_ns`` around each call.

    python -m bench.cold_path          # → bench/results/cold_path.json (~1 min)

Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from bench.micro import us_summary
from bench.sysinfo import machine
from rtdecode.dsp import build_chain
from rtdecode.lsl import pylsl
from rtdecode.runtime.streaming import StreamingModel
from rtdecode.sinks.protocol import EstimateEncoder
from rtdecode.sinks.zmq_pub import Publisher

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "openhdemg_gamma.onnx"


def _wait(gap_s: float, how: str) -> None:
    if gap_s <= 0:
        return
    if how == "sleep":
        time.sleep(gap_s)
        return
    end = time.perf_counter() + gap_s
    while time.perf_counter() < end:
        pass


def publish_path(gaps_ms: tuple[float, ...] = (0.0, 1.0, 10.0), n: int = 500) -> list[dict]:
    """Clock, encode and send of one message after each gap (busy-waiting)."""
    work = Path(tempfile.mkdtemp(prefix="rtdecode-cold-"))
    endpoint = f"ipc://{work}/pub.sock"
    ctx = zmq.Context.instance()
    out = []
    with Publisher(endpoint, sndhwm=100000) as pub:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(endpoint)
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                if sub.poll(50):
                    sub.recv()

        th = threading.Thread(target=drain, daemon=True)
        th.start()
        time.sleep(0.3)  # subscription propagated
        enc = EstimateEncoder("dec", 1)
        y = np.ones(1, np.float32)
        for gap in gaps_ms:
            clk, en, snd = [], [], []
            for i in range(n):
                _wait(gap * 1e-3, "spin")
                t0 = time.perf_counter_ns()
                now = pylsl.local_clock()
                t1 = time.perf_counter_ns()
                frame = enc.encode(i, 0, now, now, y)
                t2 = time.perf_counter_ns()
                pub.send(frame)
                t3 = time.perf_counter_ns()
                clk.append(t1 - t0)
                en.append(t2 - t1)
                snd.append(t3 - t2)
            out.append({"gap_ms": gap, "wait": "busy", "local_clock_us": us_summary(clk),
                        "encode_us": us_summary(en), "send_us": us_summary(snd)})
        stop.set()
        th.join()
        sub.close()
    return out


def model_path(ticks: int = 3000) -> list[dict]:
    """Chain per 2-sample chunk and model step per frame, by wait mode, keep_warm off / on."""
    m = StreamingModel(MODEL, ["cpu"]).open()
    meta = m.meta
    assert meta is not None
    x = (np.random.default_rng(0).standard_normal((2, meta.channels)) * 50).astype(np.float32)
    out = []
    for how, gap in (("none", 0.0), ("busy", 1e-3), ("sleep", 1e-3)):
        for warm in (False, True):
            chain = build_chain(meta.preprocessing, meta.rate_hz, meta.channels)
            m.reset()
            tc: list[int] = []
            tm: list[int] = []
            t = 0.0
            for _ in range(ticks):
                _wait(gap, how)
                a = time.perf_counter_ns()
                frames, _ = chain.process(x, np.array([t, t + 1 / meta.rate_hz]))
                t += 2 / meta.rate_hz
                b = time.perf_counter_ns()
                tc.append(b - a)
                if frames.shape[0]:
                    m.step(frames)
                    tm.append(time.perf_counter_ns() - b)
                elif warm:
                    m.warm_step()
            out.append({"wait": how, "gap_ms": gap * 1e3, "keep_warm": warm, "chain_us": us_summary(tc),
                        "model_step_us": us_summary(tm)})
    m.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.cold_path", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cold_path.json")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    res = {"what": "per-call cost of the daemon's per-frame path, back to back vs after a gap "
                   "(bench/cold_path.py docstring)",
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "model": str(MODEL.name),
           "publish": publish_path(), "model_path": model_path()}
    res["wall_s"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    for r in res["publish"]:
        print(f"publish, {r['gap_ms']:g} ms busy gap: clock {r['local_clock_us']['p50']} / encode "
              f"{r['encode_us']['p50']} / send {r['send_us']['p50']} µs p50")
    for r in res["model_path"]:
        print(f"model path, wait {r['wait']}, keep_warm {r['keep_warm']}: chain {r['chain_us']['p50']} / "
              f"model step {r['model_step_us']['p50']} µs p50")
    print(f"wrote {args.out} ({res['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
