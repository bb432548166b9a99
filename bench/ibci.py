"""The iBCI benchmark: broadband data through the front end, beside the bare transport, and a
capacity sweep (channels × rate) that shows where each stops keeping up.

Headline: 1,024 ch @ 30 kHz in 1 ms pushes (30 samples), simulated broadband electrodes
(``rtdecode simulate broadband``, looped by the producer) → ``rtdecode serve`` with the iBCI
front end (CAR → 4th-order 250 Hz high-pass → threshold crossings + spike-band power in 20 ms
bins, :func:`bench.models.ibci_chain`) → a causal linear decoder over 5 bins (50 Hz out),
beside the bare transport (:mod:`bench.relay`: the same inlet republished per chunk, no
decoding) on the same stream. Targets (issue 13): 0 samples lost over 60 s, the daemon at
≤ 60 % of one core, e2e p99 ≤ 2 × the bare transport's.

Sweep: channels 256 … 4,096 at 30 kHz and rates 10 … 60 kHz at 1,024 channels (1 ms pushes),
daemon and bare transport at every point. A point *keeps up* when no sample is missing at the
unit, no message is lost, e2e p99 ≤ :data:`KEEP_UP_P99_MS` and the unit's CPU share stays
below :data:`SATURATED_CPU`; each failing point says why (the producer itself falling
behind is reported too: then the point measures the producer, not the unit).

    python -m bench ibci                      # headline 60 s + sweep (10 s per point)
    python -m bench ibci --no-sweep --seconds 10
    python -m bench ibci --table bench/results/ibci.json   # markdown tables from a result

Results: ``bench/results/ibci.json``. Numbers in docs/performance.md come from a run on a quiet
machine (never from a loaded one).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.harness import Case, run_cases, write_result
from bench.sysinfo import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HEADLINE = {"channels": 1024, "rate_hz": 30000.0}
TARGET = {"samples_lost": 0, "cpu_share_max": 0.60, "p99_ratio_max": 2.0}
CHANNELS = (256, 512, 1024, 2048, 4096)  # at 30 kHz
RATES = (10000.0, 20000.0, 30000.0, 40000.0, 60000.0)  # at 1,024 channels
#: e2e p99 above this (ms) counts as not keeping up (the backlog grows)
KEEP_UP_P99_MS = 20.0
#: a unit at or above this share of one core is saturated
SATURATED_CPU = 0.95


def _pair(tag: str, channels: int, rate_hz: float, seconds: float, group: str,
          providers: list[str]) -> list[Case]:
    """The bare transport and the daemon on the same broadband stream (1 ms pushes)."""
    common = {"chunk": max(1, round(rate_hz / 1000)), "seconds": seconds, "group": group,
              "data": "broadband", "index_channel": False}
    return [Case(f"{tag}-bare", "bare", channels, rate_hz, **common),  # type: ignore[arg-type]
            Case(f"{tag}-daemon", "daemon", channels, rate_hz, model="ibci", providers=providers,
                 **common)]  # type: ignore[arg-type]


def ibci_cases(seconds: float, sweep_seconds: float, providers: list[str], sweep: bool = True) -> list[Case]:
    """The headline pair, then (``sweep``) one pair per other sweep point."""
    h = HEADLINE
    cases = _pair("ibci", h["channels"], h["rate_hz"], seconds, "ibci", providers)
    if sweep:
        points = [(c, h["rate_hz"]) for c in CHANNELS] + [(h["channels"], r) for r in RATES]
        for ch, rate in dict.fromkeys(points):
            if (ch, rate) != (h["channels"], h["rate_hz"]):
                tag = f"cap-{ch}ch-{rate / 1000:g}khz"
                cases += _pair(tag, ch, rate, sweep_seconds, "capacity", providers)
    return cases


def verdict(case: dict) -> tuple[bool, list[str]]:
    """Whether a case kept up, and why not."""
    why = []
    if (case["input"]["samples_missing"] or 0) > 0:
        why.append(f"{case['input']['samples_missing']} samples missing")
    if case["messages"]["lost_total"] > 0:
        why.append(f"{case['messages']['lost_total']} messages lost")
    p99 = case["e2e_ms"]["p99"]
    if p99 is None or p99 > KEEP_UP_P99_MS:
        why.append(f"e2e p99 {p99} ms > {KEEP_UP_P99_MS:g}")
    cpu = case["unit"]["cpu_share"]
    if cpu is not None and cpu >= SATURATED_CPU:
        why.append(f"CPU {cpu:.2f} of a core")
    if case["input"]["producer_late_chunks"]:
        why.append(f"producer late on {case['input']['producer_late_chunks']} chunks")
    return not why, why


def _row(c: dict) -> dict:
    ok, why = verdict(c)
    k = c["case"]
    return {"target": k["target"], "channels": k["channels"], "rate_hz": k["rate_hz"],
            "msamples_per_s": round(k["channels"] * k["rate_hz"] / 1e6, 3), "keeps_up": ok, "why": why,
            "e2e_p50_ms": c["e2e_ms"]["p50"], "e2e_p99_ms": c["e2e_ms"]["p99"],
            "cpu_share": c["unit"]["cpu_share"],
            "samples_missing": c["input"]["samples_missing"], "messages_lost": c["messages"]["lost_total"],
            "rss_end_mb": c["unit"]["rss_mb"]["end"]}


def summary(cases: list[dict]) -> dict:
    """Headline against the targets; every sweep point's verdict; each target's limit."""
    rows = [_row(c) for c in cases if c["case"]["group"] in ("ibci", "capacity")]
    out: dict = {"target": TARGET, "keep_up_rule": {"e2e_p99_ms_max": KEEP_UP_P99_MS, "cpu_share_max":
                                                    SATURATED_CPU, "samples_missing": 0, "messages_lost": 0},
                 "points": sorted(rows, key=lambda r: (r["target"], r["msamples_per_s"]))}
    head = {c["case"]["target"]: c for c in cases if c["case"]["group"] == "ibci"}
    if {"bare", "daemon"} <= head.keys():
        d, b = head["daemon"], head["bare"]
        ratio = round(d["e2e_ms"]["p99"] / b["e2e_ms"]["p99"], 3) if b["e2e_ms"]["p99"] else None
        lost = max(d["input"]["samples_missing"] or 0, 0) + d["messages"]["lost_total"]
        out["headline"] = {"daemon": _row(d), "bare": _row(b), "p99_ratio": ratio, "samples_lost": lost,
                           "met": {"lost": lost == TARGET["samples_lost"],
                                   "cpu": (d["unit"]["cpu_share"] or 1e9) <= TARGET["cpu_share_max"],
                                   "p99": ratio is not None and ratio <= TARGET["p99_ratio_max"]},
                           "stages_ms": (d.get("daemon_status") or {}).get("stages_ms")}
    for target in ("daemon", "bare"):
        mine = [r for r in rows if r["target"] == target]
        good = [r["msamples_per_s"] for r in mine if r["keeps_up"]]
        bad = [r["msamples_per_s"] for r in mine if not r["keeps_up"]]
        out.setdefault("limit_msamples_per_s", {})[target] = {
            "highest_kept_up": max(good, default=None), "lowest_not_kept_up": min(bad, default=None)}
    return out


def table(res: dict) -> str:
    """Markdown tables of a result: the headline and the sweep."""
    s = res["ibci"]
    lines = []
    if "headline" in s:
        h = s["headline"]
        lines += ["| 1,024 ch @ 30 kHz, 1 ms pushes | e2e p50 (ms) | e2e p99 (ms) | CPU (one core) "
                  "| samples lost |", "|---|---|---|---|---|"]
        for t in ("bare", "daemon"):
            r = h[t]
            lines.append(f"| {t} | {r['e2e_p50_ms']} | {r['e2e_p99_ms']} | {r['cpu_share']} | "
                         f"{max(r['samples_missing'] or 0, 0) + r['messages_lost']} |")
        lines += ["", f"p99 ratio {h['p99_ratio']} (target ≤ {s['target']['p99_ratio_max']}); "
                      f"met: {h['met']}", ""]
    lines += ["| target | channels | rate (kHz) | Msamples/s | keeps up | e2e p99 (ms) | CPU | why not |",
              "|---|---|---|---|---|---|---|---|"]
    for r in s["points"]:
        lines.append(f"| {r['target']} | {r['channels']} | {r['rate_hz'] / 1000:g} | {r['msamples_per_s']} | "
                     f"{'yes' if r['keeps_up'] else 'no'} | {r['e2e_p99_ms']} | {r['cpu_share']} | "
                     f"{'; '.join(r['why'])} |")
    return "\n".join(lines) + "\n"


def run(seconds: float, sweep_seconds: float, providers: list[str], out: Path, sweep: bool = True,
        log=print) -> dict:  # noqa: ANN001
    """Run the cases, write the JSON, return it."""
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rtdecode-bench-ibci-"))
    res: dict = {"benchmark": "ibci", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                 "providers": providers, "seconds": seconds, "sweep_seconds": sweep_seconds, "cases": []}
    cases = ibci_cases(seconds, sweep_seconds, providers, sweep)
    log(f"ibci: {len(cases)} cases; work dir {work}")
    run_cases(cases, res, work, log)
    res["ibci"] = summary(res["cases"])
    return write_result(res, out, work, t0, log)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench ibci``."""
    ap = argparse.ArgumentParser(prog="python -m bench ibci", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="pushing time of the headline pair (60)")
    ap.add_argument("--sweep-seconds", type=float, default=10.0, help="pushing time per sweep case (10)")
    ap.add_argument("--no-sweep", action="store_true", help="the headline pair only")
    ap.add_argument("--providers", default="cpu", help="decoders.providers, comma-separated")
    ap.add_argument("--out", type=Path, default=RESULTS / "ibci.json")
    ap.add_argument("--table", type=Path, default=None, help="print the tables of a result and exit")
    args = ap.parse_args(argv)
    if args.table is not None:
        print(table(json.loads(args.table.read_text(encoding="utf-8"))), end="")
        return 0
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    res = run(args.seconds, args.sweep_seconds, providers, args.out, sweep=not args.no_sweep)
    print(table(res), end="")
    return 0
