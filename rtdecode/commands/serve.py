"""``rtdecode serve CONFIG``: run the daemon."""

from __future__ import annotations

import argparse

from rtdecode.config import load_config

#: the command installs its own SIGINT / SIGTERM handling (rtdecode.cli keeps the early one until then)
OWNS_SIGNALS = True


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    p = sub.add_parser("serve", help="run the decoding daemon",
                       description="Run the daemon: LSL stream → decoders → ZeroMQ PUB.")
    p.add_argument("config", help="TOML or YAML config (see deploy/configs/)")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--max-samples", type=int, default=None, help="stop after N input samples")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load and validate the config, then run the daemon until stopped."""
    from rtdecode.service.daemon import Daemon

    cfg = load_config(args.config)
    if args.duration is not None:
        cfg.service.duration_s = args.duration
    if args.max_samples is not None:
        cfg.service.max_samples = args.max_samples
    return Daemon(cfg).run()
