"""``rtdecode info MODEL``: print a model's metadata."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` sub-command."""
    p = sub.add_parser("info", help="show a model's metadata (rates, chain, states, metrics)")
    p.add_argument("model", help=".onnx file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the metadata as JSON."""
    from rtdecode.runtime.streaming import read_metadata

    meta = read_metadata(args.model)
    print(json.dumps(meta.model_dump(mode="json"), indent=2))
    return 0
