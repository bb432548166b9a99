"""What recording the session costs the daemon's latency, measured as interleaved A/B pairs.

``python -m bench recording`` runs the headline stream (64 ch @ 2048 Hz, shipped Gamma CNN)
through the daemon without ``[record]`` (A) and with it (B), ``--pairs`` times, in the order
A B B A A B … so that a slow drift of the machine falls on both arms alike. One pair of
single runs cannot resolve a 10 % effect on a small shared VM (two identical daemons in one
run differ by up to 3× in p99 there); the pooled distributions of several pairs can, and the
spread of the per-pair ratios shows how far one pair can be trusted.

Reported (JSON, ``bench/results/recording-ab.json``): per arm the pooled e2e percentiles
(p50 / p99 / p99.9 / max, pooled from each run's 401-point quantile function weighted by its
message count), the pooled p99 ratio B / A against the issue's ≤ 1.10, the per-pair ratios
with their median, messages lost and the recorder's drops. Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import Case, run_cases, write_result
from bench.profiles import HEADLINE, RESULTS, TARGET
from bench.sysinfo import machine


def ab_cases(pairs: int, seconds: float, writer_priority: str) -> list[Case]:
    """The interleaved runs: pair k is A B for even k and B A for odd k."""
    h = HEADLINE
    out: list[Case] = []
    for k in range(pairs):
        arms = [False, True] if k % 2 == 0 else [True, False]
        for rec in arms:
            out.append(Case(f"rec-{'on' if rec else 'off'}-{k}", "daemon", h["channels"], h["rate_hz"],
                            seconds=seconds, model=h["model"], record=rec, writer_priority=writer_priority,
                            group="recording"))
    return out


def pooled(runs: list[dict]) -> dict[str, float | int | None]:
    """Percentiles (ms) of the runs' e2e pooled: each run's quantile function, weighted by n."""
    runs = [r for r in runs if r["e2e_cdf_ms"]]
    if not runs:
        return {"p50": None, "p99": None, "p999": None, "max": None, "n": 0}
    vals = [np.asarray(r["e2e_cdf_ms"]) for r in runs]
    x = np.concatenate(vals)
    wt = np.concatenate([np.full(v.size, r["e2e_ms"]["n"] / v.size) for v, r in zip(vals, runs, strict=True)])
    order = np.argsort(x)
    x, cw = x[order], np.cumsum(wt[order]) / wt.sum()

    def q(p: float) -> float:
        return round(float(x[min(np.searchsorted(cw, p), x.size - 1)]), 4)

    return {"p50": q(0.50), "p99": q(0.99), "p999": q(0.999),
            "max": round(max(r["e2e_ms"]["max"] for r in runs), 4),
            "n": int(sum(r["e2e_ms"]["n"] for r in runs))}


def _pairs(cases: list[dict]) -> list[tuple[dict, dict]]:
    """(off, on) runs of each pair, matched by id suffix within one run of the benchmark."""
    out = []
    for c in cases:
        if not c["case"]["record"]:
            twin = c["case"]["id"].replace("rec-off-", "rec-on-")
            on = next((d for d in cases if d["case"]["id"] == twin), None)
            if on is not None:
                out.append((c, on))
    return out


def bootstrap_p99_ratio(pairs: list[tuple[dict, dict]], n_boot: int = 2000, seed: int = 0) -> list[float]:
    """5th and 95th percentiles of the pooled p99 ratio over pairs resampled with replacement."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        pick = [pairs[i] for i in rng.integers(0, len(pairs), len(pairs))]
        a, b = pooled([p[0] for p in pick])["p99"], pooled([p[1] for p in pick])["p99"]
        if a and b:
            ratios.append(b / a)
    return [round(float(v), 3) for v in np.percentile(ratios, [5, 95])]


def summarise(cases: list[dict]) -> dict:
    """Pooled arms, their ratios (with a bootstrap interval over pairs) and the per-pair ratios."""
    matched = _pairs(cases)
    off, on = [p[0] for p in matched], [p[1] for p in matched]
    a, b = pooled(off), pooled(on)
    pairs = [{"pair": x["case"]["id"], "p50_ratio": round(y["e2e_ms"]["p50"] / x["e2e_ms"]["p50"], 3),
              "p99_ratio": round(y["e2e_ms"]["p99"] / x["e2e_ms"]["p99"], 3)} for x, y in matched]
    out: dict = {"off": a, "on": b, "pairs": pairs,
                 "messages_lost": {"off": sum(c["messages"]["lost_total"] for c in off),
                                   "on": sum(c["messages"]["lost_total"] for c in on)},
                 "recorder_dropped": [(c.get("daemon_status") or {}).get("record", {}).get("dropped")
                                      for c in on],
                 "target_p99_ratio_max": TARGET["recording_p99_ratio_max"]}
    if a["p50"] and b["p50"] and a["p99"] and b["p99"]:
        out["p50_ratio"] = round(b["p50"] / a["p50"], 3)
        out["p99_ratio"] = round(b["p99"] / a["p99"], 3)
        out["p999_ratio"] = round(b["p999"] / a["p999"], 3) if a["p999"] else None
        out["met"] = out["p99_ratio"] <= TARGET["recording_p99_ratio_max"]
    if pairs:
        out["pair_p99_ratio_median"] = round(float(np.median([p["p99_ratio"] for p in pairs])), 3)
        out["p99_ratio_bootstrap_90"] = bootstrap_p99_ratio(matched)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m bench recording [--pairs N] [--seconds S] [--writer-priority P] [--out F]``."""
    ap = argparse.ArgumentParser(prog="python -m bench recording", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=6, help="A/B pairs (each two daemon runs)")
    ap.add_argument("--seconds", type=float, default=12.0, help="pushing time per run")
    ap.add_argument("--writer-priority", choices=["", "idle", "low", "normal"], default="",
                    help="record.writer_priority of the recording arm (default: the config's default)")
    ap.add_argument("--out", type=Path, default=RESULTS / "recording-ab.json")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="only summarise these result files together (their pairs pooled) into --out")
    args = ap.parse_args(argv)
    if args.merge:
        runs = [json.loads(f.read_text(encoding="utf-8")) for f in args.merge]
        for i, r in enumerate(runs):  # ids unique across files
            for c in r["cases"]:
                c["case"]["id"] += f"-run{i}"
        merged = {"benchmark": "recording_ab_merged", "files": [f.name for f in args.merge],
                  "summary": summarise([c for r in runs for c in r["cases"]])}
        args.out.write_text(json.dumps(merged, indent=1), encoding="utf-8")
        print(json.dumps(merged["summary"] | {"pairs": len(merged["summary"]["pairs"])}, indent=1))
        return 0
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rtdecode-bench-rec-"))
    res: dict = {"benchmark": "recording_ab", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "machine": machine(), "pairs": args.pairs, "seconds_per_run": args.seconds,
                 "writer_priority": args.writer_priority or "default", "cases": []}
    cases = ab_cases(args.pairs, args.seconds, args.writer_priority)
    print(f"recording A/B: {len(cases)} runs × {args.seconds:g} s; work dir {work}")
    run_cases(cases, res, work, print)
    res["summary"] = summarise(res["cases"])
    s = res["summary"]
    print(f"pooled e2e p99: off {s['off']['p99']} ms, on {s['on']['p99']} ms → ratio {s.get('p99_ratio')} "
          f"(target ≤ {s['target_p99_ratio_max']}; bootstrap 90 % {s.get('p99_ratio_bootstrap_90')}); "
          f"per-pair median {s.get('pair_p99_ratio_median')}")
    write_result(res, args.out, work, t_start, print)
    return 0
