"""Interleaved A/B pairs: daemon variants beside the bare transport, one short case each, in turns.

Each round runs the bare transport and then every variant (a daemon with extra environment, e.g.
``RTDECODE_SERVICE__PREWAKE_MS=0``) on the headline stream (64 ch @ 2048 Hz, Gamma CNN) or the
iBCI stream (1,024 ch @ 30 kHz broadband, iBCI front end); rows go to a JSON list. To compare two
commits, run it from a worktree of each in turn (the daemon is started from the tree the script is in).

    python -m bench.pairs --seconds 12 --rounds 3 --out pairs.json \\
        --variant 'pw0={"RTDECODE_SERVICE__PREWAKE_MS": "0"}' --variant 'default={}'
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.harness import Case, run_case
from bench.ibci import HEADLINE
from bench.ibci import _pair as ibci_pair
from bench.profiles import headline_cases


def _cases(stream: str, seconds: float) -> tuple[Case, Case]:
    """The bare transport and the daemon on the stream, as ``make bench`` / ``bench ibci`` build them."""
    if stream == "headline":
        bare, daemon = headline_cases(seconds, ["cpu"])[:2]
    else:
        bare, daemon = ibci_pair("ibci", HEADLINE["channels"], HEADLINE["rate_hz"], seconds, "pairs", ["cpu"])
    return bare, daemon


def _row(name: str, r: int, res: dict) -> dict:
    e = res["e2e_ms"]
    stages = (res.get("daemon_status") or {}).get("stages_ms") or {}
    return {"name": name, "rep": r, **{k: e[k] for k in ("p50", "p90", "p99", "p999", "max")},
            "cpu": res["unit"]["cpu_share"], "lost": res["messages"]["lost_total"],
            "missing": res["input"]["samples_missing"],
            "stages": {k: (round(v["p50"] * 1e3), round(v["p99"] * 1e3)) for k, v in stages.items()}}


def main(argv: list[str] | None = None) -> int:
    """CLI entry (``python -m bench.pairs``)."""
    ap = argparse.ArgumentParser(prog="python -m bench.pairs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stream", choices=["headline", "ibci"], default="headline")
    ap.add_argument("--variant", action="append", default=[], help='NAME=JSON environment of a daemon')
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    pairs = [v.split("=", 1) for v in args.variant]
    variants = [(name, json.loads(env)) for name, env in pairs] or [("daemon", {})]
    bare, daemon = _cases(args.stream, args.seconds)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            for name, env in [("bare", None), *variants]:
                case = replace(bare if env is None else daemon, id=f"{name}-{r}")
                saved = dict(os.environ)
                os.environ.update(env or {})
                try:
                    res = run_case(case, Path(work))
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                rows.append(_row(name, r, res))
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
