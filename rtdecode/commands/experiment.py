"""``rtdecode experiment fusion-sim | fusion-monkey``: reproduce seed 002's fusion results."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``experiment`` sub-command (``fusion-sim``, ``fusion-monkey``) to ``subparsers``."""
    p = subparsers.add_parser("experiment", help="run a paper experiment (decision fusion, seed 002)",
                              description="Reproduce the seed papers' experiments; results (JSON + PNG) "
                                          "go to --out (default bench/results/fusion).")
    exps = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)

    s = exps.add_parser("fusion-sim", help="Kalman / ANN fusion of three decoders on simulated cortex",
                        description="Seed 002's simulation: per trial a new subject of 50 cosine-tuned "
                                    "Poisson neurons; Kalman, Wiener and population-vector decoders trained "
                                    "on good (3000 steps) and poor (1500 steps) sets; Kalman and ANN fusion "
                                    "trained on a separate set; RMS error on new trajectories.")
    s.add_argument("--trials", type=int, default=100, help="random trials (default 100)")
    s.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    s.add_argument("--out", type=Path, default=None, help="output folder (default bench/results/fusion)")
    s.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (default: min(2, CPUs))")
    s.add_argument("--bin-ms", type=float, default=50.0,
                   help="spike-count bin = one time step, ms (default 50)")
    s.add_argument("--sim-rate-hz", type=float, default=200.0,
                   help="simulator sample rate before binning, Hz (default 200)")
    s.add_argument("--good-steps", type=int, default=3000,
                   help="good decoders' training steps (default 3000)")
    s.add_argument("--poor-steps", type=int, default=1500,
                   help="poor decoders' training steps (default 1500)")
    s.add_argument("--test-steps", type=int, default=3000, help="test steps per trial (default 3000)")
    s.add_argument("--no-plot", action="store_true", help="skip the figure")
    s.set_defaults(func=run)

    m = exps.add_parser("fusion-monkey", help="fusion of three decoders on real monkey M1/PMd spikes",
                        description="Disjoint decoder-training / fusion-training / test trials of the binned "
                                    "monkey reach data; R² of position and velocity per decoder and fused.")
    m.add_argument("--data", type=Path, default=None,
                   help="bmi_monkeyreach_binned folder (default ../shared/data/bmi_monkeyreach_binned "
                        "or $RTDECODE_SHARED_DATA/bmi_monkeyreach_binned); skipped when the default "
                        "is absent")
    m.add_argument("--splits", type=int, default=10, help="random trial splits (default 10)")
    m.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    m.add_argument("--out", type=Path, default=None, help="output folder (default bench/results/fusion)")
    m.add_argument("--no-plot", action="store_true", help="skip the figure")
    m.set_defaults(func=run)
    return p


def _out(args: argparse.Namespace) -> Path:
    from rtdecode.experiments.common import DEFAULT_OUT

    return Path(args.out) if args.out is not None else DEFAULT_OUT


def _fmt(ms: dict) -> str:
    return f"{ms['mean']:.3f} ± {ms['se']:.3f}"


def _run_sim(args: argparse.Namespace) -> int:
    from rtdecode.experiments.fusion_sim import FUSED, SINGLE, SimConfig, run_fusion_sim

    if args.trials < 1 or args.jobs < 1:
        raise ConfigError(f"--trials and --jobs must be >= 1 (got {args.trials}, {args.jobs})",
                          "use e.g. --trials 100 --jobs 2")
    cfg = SimConfig(bin_ms=args.bin_ms, sim_rate_hz=args.sim_rate_hz, good_steps=args.good_steps,
                    poor_steps=args.poor_steps, test_steps=args.test_steps)
    data = run_fusion_sim(args.trials, args.seed, args.out, jobs=args.jobs, cfg=cfg, plot=not args.no_plot)
    print(f"fusion-sim: {args.trials} trials in {data['elapsed_s']:.0f} s "
          f"(RMS error of the decoded velocity, cm/s, mean ± s.e. over trials)")
    for cond, summ in data["summary"].items():
        print(f"  {cond} decoders:")
        for name in (*SINGLE, *FUSED):
            line = f"    {name:24s} {_fmt(summ['rms_cm_s'][name])}"
            if name in FUSED:
                line += (f"   beats best single in {100 * summ['fraction_beats_best_single'][name]:.0f} % "
                         f"of trials")
            print(line)
    print(f"  results: {_out(args) / 'fusion_sim.json'}")
    return 0


def _run_monkey(args: argparse.Namespace) -> int:
    from rtdecode.experiments.fusion_monkey import FUSED, SINGLE, default_data_dir, run_fusion_monkey

    data_dir = args.data
    if data_dir is None:
        data_dir = default_data_dir()
        if not data_dir.is_dir():
            print(f"fusion-monkey: skipped — the monkey reach data is not at {data_dir} "
                  "(pass --data DIR or set RTDECODE_SHARED_DATA)", file=sys.stderr)
            return 0
    if args.splits < 1:
        raise ConfigError(f"--splits must be >= 1, got {args.splits}", "use e.g. 10")
    data = run_fusion_monkey(data_dir, args.out, splits=args.splits, seed=args.seed, plot=not args.no_plot)
    print(f"fusion-monkey: {args.splits} splits in {data['elapsed_s']:.0f} s "
          "(held-out R², mean ± s.e. over splits)")
    r2 = data["summary"]["r2"]
    for name in (*SINGLE, *FUSED):
        pos = "   n/a        " if r2[name]["position"] is None else _fmt(r2[name]["position"])
        line = f"  {name:24s} position {pos}   velocity {_fmt(r2[name]['velocity'])}"
        if name in FUSED:
            fr = data["summary"]["fraction_splits_fused_ge_best_single"][name]
            line += f"   ≥ best single: pos {100 * fr['position']:.0f} %, vel {100 * fr['velocity']:.0f} %"
        print(line)
    print(f"  results: {_out(args) / 'fusion_monkey.json'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen experiment; returns the exit code."""
    if args.experiment == "fusion-sim":
        return _run_sim(args)
    if args.experiment == "fusion-monkey":
        return _run_monkey(args)
    raise ConfigError(f"unknown experiment {args.experiment!r}", "use fusion-sim or fusion-monkey")
