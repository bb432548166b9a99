"""Cost of one tick of the iBCI front end (1,024 ch @ 30 kHz, 1 ms = 30 samples), by variant.

Each variant runs ``ticks`` back-to-back calls on the same chunk of simulated broadband data
(:class:`rtdecode.sources.broadband.BroadbandSimulator`) and reports µs per tick (p50 / p99 …),
or, with ``--callgrind``, the instructions per tick counted by ``valgrind --tool=callgrind``
(two runs of different length, differenced, so start-up and imports cancel): a count that
does not depend on the machine's load.

Variants
--------
``frontend``         the chain as shipped (:func:`rtdecode.ibci.frontend.frontend_chain`): car →
                     butter (4th-order 250 Hz high-pass), both in float32 → crossings_sbp
``frontend64``       the same chain in float64 (``precision = "float64"``)
``frontend_split``   what separate stages cost when a decoder needs both features: two chains,
                     car → butter → crossings and car → butter → sbp
``fused``            the crossings_sbp stage alone, on spike-band input
``split``            the crossings and sbp stages alone, on the same input
``car``              the car stage alone
``butter``           the butter stage alone (its matrix path: one product per chunk)
``sosfilt64``        ``scipy.signal.sosfilt`` with kept state on the same chunk, float64
``sosfilt32``        the same in float32
``gemm32``           the butter stage's matrix product in float32 (the product alone)

    python -m bench frontend                       # µs per tick, all variants
    python -m bench frontend --callgrind --ticks 200
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import signal

from bench.micro import time_calls
from bench.sysinfo import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HP = {"kind": "butter", "btype": "highpass", "order": 4, "cutoff_hz": 250.0}
VARIANTS = ("frontend", "frontend64", "frontend_split", "fused", "split", "car", "butter", "sosfilt64",
            "sosfilt32", "gemm32")


def _chunk(channels: int, rate_hz: float, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of simulated broadband data, float32 (chunk, channels) µV, and its times."""
    from rtdecode.sources.broadband import BroadbandSimulator

    sim = BroadbandSimulator(channels, rate_hz, seed=0)
    sim.generate(int(rate_hz) // 20)  # 50 ms in: the units are firing
    x, _ = sim.generate(chunk)
    return x, np.arange(chunk) / rate_hz


def _tick(variant: str, x: np.ndarray, t: np.ndarray, rate_hz: float) -> Callable[[], object]:
    """The function one tick of ``variant`` runs."""
    from rtdecode.dsp import build_chain

    c = x.shape[1]
    tx = {"threshold": -4.5, "noise_rms": 8.0, "bin_s": 0.02}
    if variant in ("frontend", "frontend64", "frontend_split", "car", "butter"):
        from rtdecode.ibci.frontend import frontend_chain

        specs = {"frontend": [frontend_chain(8.0)],
                 "frontend64": [frontend_chain(8.0, precision="float64")],
                 "frontend_split": [[{"kind": "car"}, HP, {"kind": "crossings", **tx}],
                                    [{"kind": "car"}, HP, {"kind": "sbp", "bin_s": 0.02}]],
                 "car": [[{"kind": "car"}]], "butter": [[HP]]}[variant]
        chains = [build_chain(s, rate_hz, c) for s in specs]
        return lambda: [ch.process(x, t) for ch in chains]
    if variant in ("fused", "split"):
        band, _ = build_chain([{"kind": "car"}, HP], rate_hz, c).process(x, t)
        y = band.astype(np.float64)
        kinds = [{"kind": "crossings_sbp", **tx}] if variant == "fused" else [
            {"kind": "crossings", **tx}, {"kind": "sbp", "bin_s": 0.02}]
        stages = [build_chain([k], rate_hz, c).stages[0] for k in kinds]
        return lambda: [s._step(y, t) for s in stages]
    sos = signal.butter(HP["order"], HP["cutoff_hz"], btype="highpass", fs=rate_hz, output="sos")
    if variant in ("sosfilt64", "sosfilt32"):
        dt = np.float64 if variant == "sosfilt64" else np.float32
        xs, sos_t = x.astype(dt), sos.astype(dt)
        zi = np.zeros((sos.shape[0], 2, c), dt)
        return lambda: signal.sosfilt(sos_t, xs, axis=0, zi=zi)
    if variant == "gemm32":
        k = 2 * sos.shape[0] + x.shape[0]
        m = np.ones((k, k), np.float32)
        buf = np.ones((k, c), np.float32)
        return lambda: m @ buf
    raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")


def time_variant(variant: str, channels: int, rate_hz: float, chunk: int, ticks: int) -> dict:
    """µs per tick of one variant, back to back (wall clock, one BLAS thread)."""
    x, t = _chunk(channels, rate_hz, chunk)
    return time_calls(_tick(variant, x, t, rate_hz), ticks, warmup=min(200, ticks))


def _callgrind_ir(variant: str, channels: int, rate_hz: float, chunk: int, ticks: int,
                  work: Path) -> int:
    """Instructions (Ir) of a whole run of ``ticks`` ticks under callgrind."""
    out = work / f"cg-{variant}-{ticks}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", "bench",
           "frontend", "--variant", variant, "--channels", str(channels), "--rate", str(rate_hz),
           "--chunk", str(chunk), "--ticks", str(ticks), "--raw"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    text = out.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(m.group(1))


def callgrind_variant(variant: str, channels: int, rate_hz: float, chunk: int, ticks: int) -> dict:
    """Instructions per tick: (Ir of 2·ticks − Ir of ticks) / ticks, start-up cancelled."""
    with tempfile.TemporaryDirectory(prefix="rtdecode-cg-") as tmp:
        short = _callgrind_ir(variant, channels, rate_hz, chunk, ticks, Path(tmp))
        long = _callgrind_ir(variant, channels, rate_hz, chunk, 2 * ticks, Path(tmp))
    return {"instructions_per_tick": round((long - short) / ticks), "ticks": ticks}


def main(argv: list[str] | None = None) -> int:
    """CLI entry (``python -m bench frontend``)."""
    ap = argparse.ArgumentParser(prog="python -m bench frontend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--rate", type=float, default=30000.0)
    ap.add_argument("--chunk", type=int, default=30, help="samples per tick (default 30: 1 ms)")
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--variant", choices=VARIANTS, action="append", help="default: all")
    ap.add_argument("--callgrind", action="store_true", help="count instructions with valgrind")
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)  # the callgrind child
    ap.add_argument("--out", type=Path, default=None, help="JSON (default bench/results/frontend.json)")
    args = ap.parse_args(argv)
    variants = args.variant or list(VARIANTS)
    if args.raw:  # run the ticks and nothing else (measured from outside)
        x, t = _chunk(args.channels, args.rate, args.chunk)
        tick = _tick(variants[0], x, t, args.rate)
        for _ in range(args.ticks):
            tick()
        return 0
    res: dict = {"benchmark": "frontend", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                 "channels": args.channels, "rate_hz": args.rate, "chunk": args.chunk,
                 "what": "one tick of each variant on the same chunk of simulated broadband data",
                 "variants": {}}
    for v in variants:
        r = (callgrind_variant(v, args.channels, args.rate, args.chunk, args.ticks) if args.callgrind
             else time_variant(v, args.channels, args.rate, args.chunk, args.ticks))
        res["variants"][v] = r
        print(f"  {v:<15} {r}")
    out = args.out or RESULTS / ("frontend-callgrind.json" if args.callgrind else "frontend.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(f"wrote {out}")
    return 0
