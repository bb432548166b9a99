"""``rtdecode simulate cortex``: stream simulated motor-cortex spikes and kinematics to LSL."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from rtdecode.errors import ConfigError
from rtdecode.sources.pacing import stop_on_signals
from rtdecode.sources.simulator import DEFAULT_SUBJECT, CortexSimulator, SimulatorOutlets

logger = logging.getLogger(__name__)


#: the command installs its own SIGINT / SIGTERM handling (rtdecode.cli keeps the early one until then)
OWNS_SIGNALS = True


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand (with its ``cortex`` model) to ``subparsers``."""
    p = subparsers.add_parser("simulate", help="stream a simulated source to LSL",
                              description="Stream simulated data to LSL outlets.")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    c = models.add_parser(
        "cortex", help="cosine-tuned Poisson neurons + random smooth 2-D hand trajectory",
        description="Two LSL outlets with identical timestamps: spike counts (type Spikes, "
                    "one channel per neuron) and kinematics (NAME-kinematics, type Kinematics: "
                    "px, py in cm, vx, vy in cm/s). Ctrl-C or SIGTERM stops it cleanly.")
    c.add_argument("--neurons", type=int, default=50, help="number of neurons (default 50)")
    c.add_argument("--rate-hz", type=float, default=1000.0,
                   help="samples per second (default 1000)")
    c.add_argument("--seed", type=int, default=0,
                   help="seed of the trajectory and spikes (default 0)")
    c.add_argument("--subject", type=int, default=DEFAULT_SUBJECT,
                   help=f"seed of the neurons' tuning (default {DEFAULT_SUBJECT}: the subject the "
                        "shipped cortex_wiener model was fitted on)")
    c.add_argument("--name", default="rtdecode-sim-cortex",
                   help="spikes stream name (default rtdecode-sim-cortex)")
    c.add_argument("--seconds", type=float, help="stop after this many seconds")
    c.add_argument("--chunk-ms", type=float, default=1.0, help="chunk duration, ms (default 1)")
    c.add_argument("--wait-consumer-s", type=float, default=0.0,
                   help="wait up to this long for a consumer before streaming (default 0)")
    c.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``rtdecode simulate cortex``; returns the exit code."""
    if args.chunk_ms <= 0:
        raise ConfigError(f"--chunk-ms must be > 0, got {args.chunk_ms}", "use e.g. 1")
    sim = CortexSimulator(n_neurons=args.neurons, rate_hz=args.rate_hz, seed=args.seed,
                          subject_seed=args.subject)
    outlets = SimulatorOutlets(sim, args.name, chunk_s=args.chunk_ms / 1e3)
    stop = threading.Event()
    with stop_on_signals(stop), outlets:
        print(f"simulating {sim.n_neurons} neurons at {sim.rate_hz:g} Hz: LSL streams "
              f"{outlets.name!r} (Spikes) and {outlets.kinematics_name!r} (Kinematics)",
              file=sys.stderr)  # noqa: T201
        if args.wait_consumer_s > 0 and not outlets.wait_for_consumers(args.wait_consumer_s):
            if stop.is_set():
                return 0
            logger.warning("no consumer connected to %r within %g s; streaming anyway",
                           outlets.name, args.wait_consumer_s)
        n = outlets.run(stop, duration_s=args.seconds)
    print(f"pushed {n} samples", file=sys.stderr)  # noqa: T201
    return 0
