"""``rtdecode simulate cortex|broadband|tms``: stream a simulated rig to LSL.

``cortex``: motor-cortex spikes and kinematics. ``broadband``: raw broadband electrodes whose
units are the cortex model's, and the kinematics (docs/ibci.md). ``tms``: a virtual TMS subject,
15-muscle EMG with MEPs after each pulse and a marker stream with each pulse's parameters
(docs/tms.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TYPE_CHECKING

from rtdecode.errors import ConfigError
from rtdecode.sources.pacing import stop_on_signals
from rtdecode.sources.simulator import (
    DEFAULT_SUBJECT,
    CortexSimulator,
    SimulatedSource,
    SimulatorOutlets,
)

if TYPE_CHECKING:
    from rtdecode.tms.simulate import TmsOutlets

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
    _register_tms(models)
    return p


def _simulator(args: argparse.Namespace) -> SimulatedSource:
    if args.model == "cortex":
        return CortexSimulator(n_neurons=args.neurons, rate_hz=args.rate_hz, seed=args.seed,
                               subject_seed=args.subject)
    from rtdecode.sources.broadband import BroadbandSimulator

    return BroadbandSimulator(args.channels, args.rate_hz, args.seed, subject_seed=args.subject,
                              noise_uv=args.noise_uv)


def _register_tms(models: argparse._SubParsersAction) -> None:
    t = models.add_parser(
        "tms", help="virtual TMS subject: 15-muscle EMG (2 kHz, µV) with MEPs + a marker per pulse",
        description="Stream NAME (EMG, 15 muscles in µV, optional TRIG channel) and NAME-markers "
                    "(one JSON marker per pulse: pulse, intensity in %%RMT, coil pose), under the "
                    "mapping protocol of seed 001 (7x7 grid at 110/120/130/140 %%RMT, then adaptive "
                    "points) or at one spot. --table writes each pulse's true responses.")
    t.add_argument("--protocol", choices=["mapping", "fixed"], default="mapping",
                   help="mapping session (default) or every pulse at the hotspot")
    t.add_argument("--intensity", type=float, default=120.0,
                   help="fixed protocol: intensity, %% of resting motor threshold (default 120)")
    t.add_argument("--pulses", type=int, help="fixed protocol: number of pulses (default: no end)")
    t.add_argument("--adaptive", type=int, default=126,
                   help="mapping: adaptive pulses per intensity after the 49 grid pulses (default 126)")
    t.add_argument("--isi-s", type=float, default=4.0, help="inter-stimulus interval, s (default 4)")
    t.add_argument("--subject", type=int, default=0, help="seed of the virtual subject (default 0)")
    t.add_argument("--seed", type=int, default=0, help="seed of noise, timing and variability")
    t.add_argument("--preactivation-prob", type=float, default=0.05,
                   help="probability of a voluntarily contracted muscle group at a pulse (0.05)")
    t.add_argument("--trigger", action="store_true", help="add a TRIG channel (5 V, 1 ms per pulse)")
    t.add_argument("--marker-lead-ms", type=float, default=0.0,
                   help="push each marker this long before its pulse sample (negative: after)")
    t.add_argument("--name", default="rtdecode-sim-tms", help="EMG stream name")
    t.add_argument("--seconds", type=float, help="stop after this many seconds")
    t.add_argument("--chunk-ms", type=float, default=1.0, help="chunk duration, ms (default 1)")
    t.add_argument("--wait-consumer-s", type=float, default=0.0,
                   help="wait up to this long for consumers of both streams before streaming")
    t.add_argument("--table", metavar="CSV", help="write each pulse (pose, intensity, true MEPs) here")
    t.add_argument("--offline", action="store_true",
                   help="with --table: compute the session's pulses without streaming")
    t.set_defaults(func=run_tms)


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


def run_tms(args: argparse.Namespace) -> int:
    """Run ``rtdecode simulate tms``; returns the exit code."""
    import numpy as np

    from rtdecode.tms.mapping import fixed_protocol, mapping_protocol
    from rtdecode.tms.simulate import TmsOutlets, TmsSimulator, write_table
    from rtdecode.tms.subject import VirtualSubject

    if args.offline and not args.table:
        raise ConfigError("--offline needs --table", "add --table session.csv")
    subject = VirtualSubject(args.subject)
    hotspot = subject.hotspot()
    if args.protocol == "mapping":
        protocol = mapping_protocol(hotspot, np.random.default_rng([args.seed, 3]),
                                    adaptive=args.adaptive)
    else:
        protocol = fixed_protocol(*hotspot, args.intensity, args.pulses)
    sim = TmsSimulator(subject, protocol, isi_s=args.isi_s, seed=args.seed, trigger=args.trigger,
                       preactivation_prob=args.preactivation_prob)
    print(f"virtual subject {args.subject}: FDI hotspot at {hotspot} mm, resting motor threshold "
          f"{sim.rmt_mso:g} %MSO", file=sys.stderr)
    if args.offline:
        while sim.plan_next():
            pass
    else:
        _stream_tms(TmsOutlets(sim, args.name, chunk_s=args.chunk_ms / 1e3,
                               marker_lead_s=args.marker_lead_ms / 1e3), args)
    if args.table:
        write_table(sim, args.table)
        print(f"wrote {len(sim.trials)} pulses to {args.table}", file=sys.stderr)
    return 0


def _stream_tms(outlets: TmsOutlets, args: argparse.Namespace) -> None:
    stop = threading.Event()
    with stop_on_signals(stop), outlets:
        print(f"streaming {outlets.name!r} (EMG, {outlets.sim.n_channels} ch at "
              f"{outlets.sim.rate_hz:g} Hz) and {outlets.markers.name!r}", file=sys.stderr)
        if args.wait_consumer_s > 0 and not outlets.wait_for_consumers(
                args.wait_consumer_s, markers=not outlets.sim.trigger):
            if stop.is_set():
                return
            logger.warning("no consumer of %r within %g s; streaming anyway", outlets.name,
                           args.wait_consumer_s)
        n = outlets.run(stop, duration_s=args.seconds)
    print(f"pushed {n} samples, {len(outlets.sim.trials)} pulses", file=sys.stderr)
