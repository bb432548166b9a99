"""The machine's own timing noise, and how much of the iBCI daemon's tail comes with it.

``probe``: one fixed piece of work (twenty 64 × 64 float32 matrix products, in cache; ~0.2 ms on
the development VM) timed every 2 ms in a process of its own. With steady CPU every iteration
costs about the same; on a shared or nested-virtualised host some take many times longer, in
windows that recur. Reported: the iterations' percentiles and the *slow windows* (iterations
≥ :data:`SLOW_FACTOR` × the median, grouped when closer than :data:`GAP_S`): how many, how
long, how far apart, the share of time inside them and the slowdown inside them.

``--beside ibci|headline --seconds S``: the same probe next to a daemon case for S s of pushing
(``ibci``: :mod:`bench.ibci`'s headline, 1,024 ch @ 30 kHz; ``headline``: ``make bench``'s Gamma
CNN case, 64 ch @ 2,048 Hz). Each *stall* of the daemon (messages with e2e above
:data:`STALL_MS` of the case, grouped when closer than 0.3 s) is checked for a slow window of
the probe at least :data:`LONG_S` long from :data:`LEAD_S` before it began to its end; the
base rate is the share of random windows of the same length that meet one. Stalls that meet
slow windows far above the base rate come with the machine's slow windows, not from the
daemon. The probe adds ~0.1 of a core beside the case, so this run attributes stalls; the
headline numbers come from ``python -m bench ibci`` and ``make bench``.

    python -m bench host_noise                              # 20 s probe on the idle machine
    python -m bench host_noise --beside ibci --beside headline --seconds 30   # + attributions

Results: ``bench/results/host_noise.json``. Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.sysinfo import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: an iteration this many times the median is slow
SLOW_FACTOR = 4.0
#: slow iterations closer than this (s) belong to one window
GAP_S = 0.05
#: a message later than this (ms) belongs to a stall of the daemon, per case
STALL_MS = {"ibci": 15.0, "headline": 5.0}
#: a stall counts as coinciding when a long slow window overlaps it or this long (s) before it
LEAD_S = 0.1
#: slow windows at least this long (s) count for attribution (shorter ones, one or two slow
#: iterations, are what the case's own load does to the probe)
LONG_S = 0.02


def probe(seconds: float, period_s: float = 0.002) -> np.ndarray:
    """Time the fixed work every ``period_s`` for ``seconds``: rows (start s, duration s)."""
    a = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)

    def work() -> float:
        return sum(float((a @ a)[0, 0]) for _ in range(20))

    for _ in range(200):
        work()
    rows = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        work()
        rows.append((t, time.monotonic() - t))
        time.sleep(period_s)
    return np.asarray(rows)


def slow_windows(rows: np.ndarray) -> list[tuple[float, float, float]]:
    """Group slow iterations into windows: (start s, end s, largest slowdown ×) each."""
    t, d = rows[:, 0], rows[:, 1]
    med = float(np.median(d))
    out: list[list[float]] = []
    for i in np.flatnonzero(d >= SLOW_FACTOR * med):
        end = t[i] + d[i]
        if out and t[i] - out[-1][1] < GAP_S:
            out[-1][1], out[-1][2] = end, max(out[-1][2], d[i] / med)
        else:
            out.append([t[i], end, d[i] / med])
    return [(a, b, c) for a, b, c in out]


def summary(rows: np.ndarray) -> dict:
    """Percentiles of the iterations (µs) and the slow windows' count, length, spacing, share."""
    d = rows[:, 1] * 1e6
    win = slow_windows(rows)
    span = float(rows[-1, 0] - rows[0, 0])
    dur = np.array([b - a for a, b, _ in win]) * 1e3
    gaps = np.diff([a for a, _, _ in win])
    inside = float(np.median([c for _, _, c in win])) if win else None
    return {"iterations": int(d.size), "seconds": round(span, 2),
            "work_us": {k: round(float(np.percentile(d, q)), 1)
                        for k, q in (("p50", 50), ("p99", 99), ("p999", 99.9), ("max", 100))},
            "slow_windows": {"count": len(win), "long": int((dur >= LONG_S * 1e3).sum()),
                             "per_minute": round(len(win) / span * 60, 1) if span else None,
                             "duration_ms_p50": round(float(np.median(dur)), 1) if win else None,
                             "duration_ms_max": round(float(dur.max()), 1) if win else None,
                             "interval_s_p50": round(float(np.median(gaps)), 2) if gaps.size else None,
                             "time_share": round(float(dur.sum() / 1e3 / span), 4) if span else None,
                             "worst_slowdown_p50": round(inside, 1) if inside else None}}


def stalls(t_recv: np.ndarray, e2e_s: np.ndarray, stall_ms: float) -> list[tuple[float, float]]:
    """The daemon's stalls: (start, end) s, from messages later than ``stall_ms``."""
    out: list[list[float]] = []
    for i in np.flatnonzero(e2e_s * 1e3 > stall_ms):
        a, b = t_recv[i] - e2e_s[i], t_recv[i]
        if out and a - out[-1][1] < 0.3:
            out[-1][0], out[-1][1] = min(out[-1][0], a), max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def attribution(rows: np.ndarray, t_recv: np.ndarray, e2e_s: np.ndarray, stall_ms: float) -> dict:
    """How many stalls meet a long slow window of the probe, against random windows."""
    win = np.array([(a, b) for a, b, _ in slow_windows(rows) if b - a >= LONG_S]).reshape(-1, 2)
    lo, hi = rows[0, 0] + LEAD_S, rows[-1, 0]
    st = [(a, b) for a, b in stalls(t_recv, e2e_s, stall_ms) if lo <= a and b <= hi]

    def meets(a: float, b: float) -> bool:
        return bool(((win[:, 0] <= b) & (win[:, 1] >= a)).any())

    hit = [meets(a - LEAD_S, b) for a, b in st]
    length = float(np.median([b - a for a, b in st])) + LEAD_S if st else LEAD_S
    starts = np.random.default_rng(0).uniform(lo, hi - length, 2000)
    base = float(np.mean([meets(s, s + length) for s in starts]))
    return {"stall_ms": stall_ms, "long_windows": len(win), "stalls": len(st), "coinciding": int(sum(hit)),
            "share": round(sum(hit) / len(st), 3) if st else None,
            "random_window_share": round(base, 3), "window_s": round(length, 3),
            "stall_ms_p50": round(float(np.median([b - a for a, b in st])) * 1e3, 1) if st else None}


def _start_probe(seconds: float, out: Path) -> subprocess.Popen:
    """Start :func:`probe` in a fresh one-thread process that saves its rows to ``out``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-m", "bench", "host_noise", "--probe-only", str(seconds),
                             "--probe-out", str(out)], cwd=ROOT, env=env)


def _probe_rows(p: subprocess.Popen, out: Path, timeout_s: float) -> np.ndarray:
    """Wait for a probe process; the rows it saved."""
    if p.wait(timeout_s) != 0:
        raise RuntimeError(f"the probe process exited with code {p.returncode}")
    return np.load(out)


def _probe_subprocess(seconds: float) -> np.ndarray:
    """Run :func:`probe` in a fresh one-thread process; its rows."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.npy"
        return _probe_rows(_start_probe(seconds, out), out, seconds + 60)


def _daemon_case(which: str, seconds: float):  # noqa: ANN202  (a bench.harness.Case)
    """The daemon case of the iBCI benchmark's or ``make bench``'s headline."""
    if which == "ibci":
        from bench.ibci import ibci_cases

        return next(c for c in ibci_cases(seconds, 10.0, ["cpu"], sweep=False) if c.target == "daemon")
    from bench.profiles import headline_cases

    return next(c for c in headline_cases(seconds, ["cpu"]) if c.target == "daemon")


def _beside(which: str, seconds: float, probe_s: float) -> dict:
    """The probe in its own process beside a daemon case; the attribution of its stalls."""
    from bench.harness import run_case

    case = _daemon_case(which, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.npy"
        p = _start_probe(probe_s, out)
        res = run_case(case, Path(tmp) / "work", log=print, series=True)
        rows = _probe_rows(p, out, probe_s + 60)
    s = res.pop("series")
    return {"case": case.id, "e2e_ms": res["e2e_ms"], "cpu_share": res["unit"]["cpu_share"],
            "probe": summary(rows),
            "attribution": attribution(rows, s["t_recv"], s["e2e_s"], STALL_MS[which])}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench host_noise``."""
    ap = argparse.ArgumentParser(prog="python -m bench host_noise", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="probe length, and case length beside (20)")
    ap.add_argument("--beside", choices=sorted(STALL_MS), action="append", default=[],
                    help="also run the probe beside this daemon case (repeatable)")
    ap.add_argument("--out", type=Path, default=RESULTS / "host_noise.json")
    ap.add_argument("--probe-only", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--probe-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe_only is not None:
        np.save(args.probe_out, probe(args.probe_only))
        return 0
    res: dict = {"benchmark": "host_noise", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                 "machine": machine(), "slow_factor": SLOW_FACTOR, "gap_s": GAP_S,
                 "idle": summary(_probe_subprocess(args.seconds))}
    for which in args.beside:
        res[f"beside_{which}"] = _beside(which, args.seconds, args.seconds + 12.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in res.items() if k not in ("machine",)}, indent=1))
    return 0
