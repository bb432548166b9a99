"""``rtdecode simulate cortex|broadband``: stream a simulated source and its kinematics to LSL."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from rtdecode.errors import ConfigError
from rtdecode.sources.pacing import stop_on_signals
from rtdecode.sources.simulator import (
    DEFAULT_SUBJECT,
    CortexSimulator,
    SimulatedSource,
    SimulatorOutlets,
)

logger = logging.getLogger(__name__)


#: the command installs its own SIGINT / SIGTERM handling (rtdecode.cli keeps the early one until then)
OWNS_SIGNALS = True


def _common(p: argparse.ArgumentParser, name: str, rate_hz: float) -> None:
    p.add_argument("--rate-hz", type=float, default=rate_hz, help=f"samples per second (default {rate_hz:g})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the session: trajectory, spikes, noise (default 0)")
    p.add_argument("--subject", type=int, default=DEFAULT_SUBJECT,
                   help=f"seed of the units' tuning (default {DEFAULT_SUBJECT}: the subject the "
                        "shipped models were fitted on)")
    p.add_argument("--name", default=name, help=f"data stream name (default {name})")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--chunk-ms", type=float, default=1.0, help="chunk duration, ms (default 1)")
    p.add_argument("--wait-consumer-s", type=float, default=0.0,
                   help="wait up to this long for a consumer before streaming (default 0)")
    p.set_defaults(func=run)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand (with its ``cortex`` and ``broadband`` models)."""
    p = subparsers.add_parser("simulate", help="stream a simulated source to LSL",
                              description="Stream simulated data to LSL outlets.")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    c = models.add_parser(
        "cortex", help="cosine-tuned Poisson neurons + random smooth 2-D hand trajectory",
        description="Two LSL outlets with identical timestamps: spike counts (type Spikes, "
                    "one channel per neuron) and kinematics (NAME-kinematics, type Kinematics: "
                    "px, py in cm, vx, vy in cm/s). Ctrl-C or SIGTERM stops it cleanly.")
    c.add_argument("--neurons", type=int, default=50, help="number of neurons (default 50)")
    _common(c, "rtdecode-sim-cortex", 1000.0)
    b = models.add_parser(
        "broadband", help="raw broadband electrodes: the cortex model's units spiking in noise",
        description="Two LSL outlets: broadband voltage (type Broadband, µV, one channel per "
                    "electrode, each with one tuned unit of the cortex model: spike waveforms, "
                    "electrode noise, common-mode and line noise; see docs/ibci.md) and the true "
                    "kinematics once per millisecond (NAME-kinematics: px, py in cm, vx, vy in cm/s). "
                    "Output is the same for a seed whatever the chunking. Ctrl-C or SIGTERM stops it.")
    b.add_argument("--channels", type=int, default=96, help="electrodes (default 96)")
    b.add_argument("--noise-uv", type=float, default=8.0, help="electrode noise RMS, µV (default 8)")
    _common(b, "rtdecode-sim-broadband", 30000.0)
    return p


def _simulator(args: argparse.Namespace) -> SimulatedSource:
    if args.model == "cortex":
        return CortexSimulator(n_neurons=args.neurons, rate_hz=args.rate_hz, seed=args.seed,
                               subject_seed=args.subject)
    from rtdecode.sources.broadband import BroadbandSimulator

    return BroadbandSimulator(args.channels, args.rate_hz, args.seed, subject_seed=args.subject,
                              noise_uv=args.noise_uv)


def run(args: argparse.Namespace) -> int:
    """Run ``rtdecode simulate MODEL``; returns the exit code."""
    if args.chunk_ms <= 0:
        raise ConfigError(f"--chunk-ms must be > 0, got {args.chunk_ms}", "use e.g. 1")
    sim = _simulator(args)
    outlets = SimulatorOutlets(sim, args.name, chunk_s=args.chunk_ms / 1e3)
    stop = threading.Event()
    with stop_on_signals(stop), outlets:
        print(f"simulating {sim.n_channels} {sim.stream_type} channels at {sim.rate_hz:g} Hz: LSL "
              f"streams {outlets.name!r} ({sim.stream_type}) and {outlets.kinematics_name!r} "
              "(Kinematics)", file=sys.stderr)  # noqa: T201
        if args.wait_consumer_s > 0 and not outlets.wait_for_consumers(args.wait_consumer_s):
            if stop.is_set():
                return 0
            logger.warning("no consumer connected to %r within %g s; streaming anyway",
                           outlets.name, args.wait_consumer_s)
        n = outlets.run(stop, duration_s=args.seconds)
    print(f"pushed {n} samples", file=sys.stderr)  # noqa: T201
    return 0
