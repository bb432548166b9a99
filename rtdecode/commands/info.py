"""``rtdecode info MODEL``: print a model's metadata (a streaming ONNX model or a fusion model)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` sub-command."""
    p = sub.add_parser("info", help="show a model's metadata (rates, chain, states, bounds, metrics)",
                       description="Print the metadata of a streaming model (.onnx) or of a Kalman "
                                   "fusion model (.json) as JSON.")
    p.add_argument("model", help=".onnx streaming model or .json fusion model")
    p.set_defaults(func=run)


def fusion_summary(path: Path) -> dict[str, Any]:
    """What a fusion model fuses, at what step, with which noise model (no matrices)."""
    from rtdecode.fusion.model import FusionModel

    m = FusionModel.load(path)
    return {"kind": "kalman fusion model", "decoders": dict(zip(m.decoder_names, m.blocks, strict=True)),
            "state": list(m.state_names), "dt_s": m.dt_s, "state_lags": m.state_lags,
            "noise_model": m.noise_model, "innovation_ratio": list(m.innovation_ratio),
            "provenance": m.provenance}


def run(args: argparse.Namespace) -> int:
    """Print the metadata as JSON."""
    path = Path(args.model)
    if path.suffix.lower() == ".json":
        info = fusion_summary(path)
    else:
        from rtdecode.runtime.streaming import read_metadata

        info = read_metadata(path).model_dump(mode="json")
    print(json.dumps(info, indent=2, default=str))
    return 0
