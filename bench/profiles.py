"""Benchmark profiles: which cases run, in what order, and where the result goes.

``quick`` (``make bench``, < 2 min on 2 cores): the headline case — 64 ch @ 2048 Hz through the
shipped Gamma CNN — with stage timing on and off, with the session recorded (``[record]``; its
cost against the same daemon not recording is ``headline.recording``), the bare transport on the
same stream, the
stateful-vs-recompute and telemetry micro-benchmarks and (torch installed) ORT vs torch eager.

``full`` (``make bench-full``, ~8 min on 2 cores): the quick profile plus sweeps — channels 8/64/128/256
(2048 Hz), rates 100 Hz / 1 kHz / 2048 Hz / 30 kHz (64 ch, 1 ms chunks), chunk sizes (headline
model), models (linear, Gamma CNN, S-ConvNet, Wiener) — each against the bare transport on the
same stream, and every execution provider that is asked for (``--providers``) — and the overload
cases.

``overload`` (``python -m bench overload``, ~1 min): 256 ch @ 30 kHz, one message per sample,
which the daemon cannot sustain, under each ``service.on_behind`` policy beside the bare
transport: age percentiles, LATE messages, skipped samples (``overload`` in the JSON).

Results: ``bench/results/latency-<profile>.json``; then :mod:`bench.report` draws the plots and
rewrites the README / docs tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Case, run_case, run_cases, write_result
from bench.sysinfo import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

HEADLINE = {"channels": 64, "rate_hz": 2048.0, "model": "gamma"}
#: source.busy_poll_s of the busy-polling headline variants (longer than the 1 ms push period)
BUSY_POLL_S = 0.002
TARGET = {"p50_ratio_max": 1.3, "p99_ratio_max": 1.5, "messages_lost": 0,
          "stateful_speedup_min": 15.0, "recording_p99_ratio_max": 1.10}


def _providers_tag(providers: list[str]) -> str:
    return "" if providers == ["cpu"] else "-" + "+".join(providers)


def headline_cases(seconds: float, providers: list[str], variants: bool = False) -> list[Case]:
    """Bare transport, daemon with stage timing on, daemon with it off, daemon recording the session
    ([record]); with ``variants`` also the daemon with ``keep_warm`` off and the bare transport and
    the daemon both busy-polling."""
    tag = _providers_tag(providers)
    h = HEADLINE
    cases = [
        Case("headline-bare", "bare", h["channels"], h["rate_hz"], seconds=seconds, group="headline"),
        Case(f"headline-gamma{tag}", "daemon", h["channels"], h["rate_hz"], seconds=seconds,
             model=h["model"], providers=providers, group="headline"),
        Case(f"headline-gamma-notiming{tag}", "daemon", h["channels"], h["rate_hz"], seconds=seconds,
             model=h["model"], providers=providers, stage_timing=False, group="headline"),
        Case(f"headline-gamma-record{tag}", "daemon", h["channels"], h["rate_hz"], seconds=seconds,
             model=h["model"], providers=providers, record=True, group="headline"),
    ]
    if variants:
        cases += [
            Case(f"headline-gamma-nowarm{tag}", "daemon", h["channels"], h["rate_hz"], seconds=seconds,
                 model=h["model"], providers=providers, keep_warm=False, group="headline"),
            Case("headline-bare-busypoll", "bare", h["channels"], h["rate_hz"], seconds=seconds,
                 busy_poll_s=BUSY_POLL_S, group="headline"),
            Case(f"headline-gamma-busypoll{tag}", "daemon", h["channels"], h["rate_hz"], seconds=seconds,
                 model=h["model"], providers=providers, busy_poll_s=BUSY_POLL_S, group="headline"),
        ]
    return cases


def sweep_cases(seconds: float, providers: list[str]) -> list[Case]:
    """The full profile's sweeps; bare-transport twins are shared between sweeps."""
    tag = _providers_tag(providers)
    cases: list[Case] = []
    bare: set[tuple[int, float, int]] = set()

    def add(case: Case) -> None:
        cases.append(case)
        key = (case.channels, case.rate_hz, case.chunk)
        if key not in bare and (case.channels, case.rate_hz, case.chunk) != (64, 2048.0, 2):
            bare.add(key)
            cases.append(Case(f"bare-{case.channels}ch-{case.rate_hz:g}hz-c{case.chunk}", "bare",
                              case.channels, case.rate_hz, chunk=case.chunk, seconds=seconds,
                              group="bare"))

    for ch in (8, 64, 128, 256):
        add(Case(f"channels-{ch}{tag}", "daemon", ch, 2048.0, seconds=seconds, model="linear",
                 publish="latest", providers=providers, group="channels"))
    for rate in (100.0, 1000.0, 30000.0):  # 2048 Hz is the 64-channel point above
        add(Case(f"rate-{rate:g}hz{tag}", "daemon", 64, rate, seconds=seconds, model="linear",
                 publish="latest", providers=providers, group="rates"))
    for chunk in (1, 8, 32):  # 2 samples (1 ms) is the headline
        add(Case(f"chunk-{chunk}{tag}", "daemon", 64, 2048.0, chunk=chunk, seconds=seconds, model="gamma",
                 providers=providers, group="chunks"))
    add(Case(f"model-gesture{tag}", "daemon", 64, 1000.0, seconds=seconds, model="gesture",
             providers=providers, group="models"))
    add(Case(f"model-wiener{tag}", "daemon", 50, 1000.0, seconds=seconds, model="wiener",
             providers=providers, group="models"))
    return cases


#: the overload case (issue 18): 256 ch @ 30 kHz in 1 ms pushes, one message per sample
OVERLOAD = {"channels": 256, "rate_hz": 30000.0, "chunk": 30, "model": "linear", "publish": "every"}


def overload_cases(seconds: float, providers: list[str]) -> list[Case]:
    """A stream the daemon cannot sustain, under each catch-up policy, beside the bare transport."""
    o = OVERLOAD
    cases = [Case("overload-bare", "bare", o["channels"], o["rate_hz"], chunk=o["chunk"], seconds=seconds,
                  group="overload")]
    for policy in ("skip", "coalesce", "none"):
        cases.append(Case(f"overload-{policy}", "daemon", o["channels"], o["rate_hz"], chunk=o["chunk"],
                          seconds=seconds, model=o["model"], publish=o["publish"], providers=providers,
                          on_behind=policy, group="overload"))
    return cases


def overload_summary(cases: list[dict]) -> dict:
    """Per policy: age percentiles, LATE messages, skipped samples and behind episodes."""
    out = {}
    for c in cases:
        if c["case"]["group"] != "overload":
            continue
        behind = (c.get("daemon_status") or {}).get("behind") or {}
        out[c["case"]["on_behind"] or "bare"] = {
            "age_ms": c["age_ms"], "e2e_ms": c["e2e_ms"], "messages": c["messages"]["received"],
            "late": c["messages"]["late"], "samples_skipped": behind.get("samples_skipped"),
            "behind_episodes": behind.get("episodes"), "budget_ms": behind.get("budget_ms"),
            "cpu_share": c["unit"]["cpu_share"]}
    return out


def compare(cases: list[dict]) -> dict:
    """Headline daemon vs bare transport ratios against the issue's targets."""
    def pick(target: str, timing: bool = True, warm: bool = True, busy: bool = False,
             record: bool = False) -> dict | None:
        return next((c for c in cases if c["case"]["group"] == "headline" and c["case"]["target"] == target
                     and (target == "bare" or (c["case"]["stage_timing"] == timing
                                               and c["case"].get("keep_warm", True) == warm))
                     and c["case"].get("record", False) == record
                     and (c["case"].get("busy_poll_s", 0.0) > 0) == busy), None)

    bare, dae, off = pick("bare"), pick("daemon"), pick("daemon", timing=False)
    if bare is None or dae is None:
        return {}
    b, d = bare["e2e_ms"], dae["e2e_ms"]
    out = {"p50_ratio": round(d["p50"] / b["p50"], 3), "p99_ratio": round(d["p99"] / b["p99"], 3),
           "messages_lost": dae["messages"]["lost_total"],
           "rss_growth_mb": (round(dae["unit"]["rss_mb"]["end"] - dae["unit"]["rss_mb"]["start"], 2)
                             if dae["unit"]["rss_mb"]["start"] is not None else None),
           "target": TARGET}
    out["met"] = {"p50": out["p50_ratio"] <= TARGET["p50_ratio_max"],
                  "p99": out["p99_ratio"] <= TARGET["p99_ratio_max"],
                  "lost": out["messages_lost"] == 0}
    if off is not None:
        out["telemetry_on_minus_off_ms"] = {
            "e2e_p50": round(d["p50"] - off["e2e_ms"]["p50"], 4),
            "e2e_p99": round(d["p99"] - off["e2e_ms"]["p99"], 4),
            "cpu_share": (round(dae["unit"]["cpu_share"] - off["unit"]["cpu_share"], 4)
                          if dae["unit"]["cpu_share"] is not None and off["unit"]["cpu_share"] is not None
                          else None)}
    rec = pick("daemon", record=True)
    if rec is not None:
        out["recording"] = recording_cost(dae, rec)
    cold = pick("daemon", warm=False)
    if cold is not None:
        out["keep_warm_off"] = {"p50_ratio": round(cold["e2e_ms"]["p50"] / b["p50"], 3),
                                "p99_ratio": round(cold["e2e_ms"]["p99"] / b["p99"], 3),
                                "cpu_share": cold["unit"]["cpu_share"]}
    bare_bp, dae_bp = pick("bare", busy=True), pick("daemon", busy=True)
    if bare_bp is not None and dae_bp is not None:
        out["busy_poll"] = {"busy_poll_s": BUSY_POLL_S,
                            "p50_ratio": round(dae_bp["e2e_ms"]["p50"] / bare_bp["e2e_ms"]["p50"], 3),
                            "p99_ratio": round(dae_bp["e2e_ms"]["p99"] / bare_bp["e2e_ms"]["p99"], 3),
                            "p50_ratio_vs_blocking_bare": round(dae_bp["e2e_ms"]["p50"] / b["p50"], 3),
                            "p99_ratio_vs_blocking_bare": round(dae_bp["e2e_ms"]["p99"] / b["p99"], 3),
                            "cpu_share": dae_bp["unit"]["cpu_share"]}
    return out


def recording_cost(off: dict, on: dict) -> dict:
    """The daemon recording its session vs the same daemon not recording (same run, same stream)."""
    r = {"p50_ratio": round(on["e2e_ms"]["p50"] / off["e2e_ms"]["p50"], 3),
         "p99_ratio": round(on["e2e_ms"]["p99"] / off["e2e_ms"]["p99"], 3),
         "p999_ratio": round(on["e2e_ms"]["p999"] / off["e2e_ms"]["p999"], 3),
         "cpu_share_on_minus_off": None,
         "messages_lost": on["messages"]["lost_total"],
         "recorder": (on.get("daemon_status") or {}).get("record")}
    if on["unit"]["cpu_share"] is not None and off["unit"]["cpu_share"] is not None:
        r["cpu_share_on_minus_off"] = round(on["unit"]["cpu_share"] - off["unit"]["cpu_share"], 4)
    r["met"] = r["p99_ratio"] <= TARGET["recording_p99_ratio_max"]
    return r


def run_profile(profile: str, seconds: float, providers: list[str], out: Path,
                micro: bool = True, log=print) -> dict:  # noqa: ANN001
    """Run a profile and write its JSON; returns the result."""
    from bench import micro as mb

    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rtdecode-bench-"))
    res: dict = {"benchmark": "latency", "profile": profile, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "machine": machine(), "providers": providers, "seconds_per_case": seconds,
                 "what": {"e2e": "receive at subscriber − push time of the newest contributing sample",
                          "age": "receive − LSL timestamp of that sample (adds the producer's chunking)",
                          "hop": "receive − publish time (ZeroMQ alone)",
                          "in_unit": "publish − push (LSL + decoding inside the unit)",
                          "settle": "the first 1 s of messages of each case is left out of latency "
                                    "statistics (counted in messages)"},
                 "cases": []}
    if profile == "overload":
        cases = overload_cases(seconds, providers)
    else:
        cases = headline_cases(seconds, providers, variants=profile == "full")
    if profile == "full":
        cases += sweep_cases(seconds, providers) + overload_cases(seconds, providers)
    log(f"{profile} profile: {len(cases)} cases × {seconds:g} s, providers {providers}; work dir {work}")
    run_cases(cases, res, work, log)
    res["headline"] = compare(res["cases"])
    res["overload"] = overload_summary(res["cases"])
    if micro and profile != "overload":
        log("micro-benchmarks:")
        ticks = 2000 if profile == "quick" else 5000
        res["stateful_vs_recompute"] = mb.stateful_vs_recompute(ticks=ticks, log=log)
        res["telemetry_overhead"] = mb.telemetry_overhead(log=log)
        res["recorder_overhead"] = mb.recorder_overhead(log=log)
        models = ("openhdemg_gamma",) if profile == "quick" else ("openhdemg_gamma", "flexemg_mlp",
                                                                    "monkey_reach_gru")
        res["ort_vs_torch"] = mb.ort_vs_torch(models, steps=1000 if profile == "quick" else 3000, log=log)
    return write_result(res, out, work, t_start, log)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench quick|full|case``."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", choices=["quick", "full", "overload", "case"])
    ap.add_argument("--seconds", type=float, default=None, help="pushing time per case (quick 15, full 12)")
    ap.add_argument("--providers", default="cpu",
                    help="decoders.providers, comma-separated: cpu | cuda,cpu | tensorrt,cuda,cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-micro", action="store_true", help="skip the in-process micro-benchmarks")
    ap.add_argument("--no-report", action="store_true", help="do not draw plots / rewrite tables")
    g = ap.add_argument_group("case (one point)")
    g.add_argument("--target", choices=["daemon", "bare"], default="daemon")
    g.add_argument("--model", default="gamma")
    g.add_argument("--channels", type=int, default=64)
    g.add_argument("--rate", type=float, default=2048.0)
    g.add_argument("--chunk", type=int, default=0, help="samples per push (default 1 ms worth)")
    g.add_argument("--publish", choices=["every", "latest"], default="every")
    g.add_argument("--no-stage-timing", action="store_true")
    g.add_argument("--busy-poll-s", type=float, default=0.0, help="source.busy_poll_s (0 = block)")
    g.add_argument("--no-keep-warm", action="store_true", help="decoders[].keep_warm = false")
    g.add_argument("--record", action="store_true", help="the daemon records the session ([record])")
    args = ap.parse_args(argv)
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    if args.profile == "case":
        c = Case("case", args.target, args.channels, args.rate, chunk=args.chunk,
                 seconds=args.seconds or 10.0, model=args.model, providers=providers,
                 publish=args.publish, stage_timing=not args.no_stage_timing, group="case",
                 busy_poll_s=args.busy_poll_s, keep_warm=not args.no_keep_warm, record=args.record)
        r = run_case(c, Path(tempfile.mkdtemp(prefix="rtdecode-bench-")), log=print)
        text = json.dumps(r, indent=1)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text + "\n")
        return 0
    seconds = args.seconds or (15.0 if args.profile == "quick" else 12.0)
    out = args.out or RESULTS / f"latency-{args.profile}{_providers_tag(providers)}.json"
    run_profile(args.profile, seconds, providers, out, micro=not args.no_micro)
    if not args.no_report:
        from bench.report import main as report

        report([])
    return 0
