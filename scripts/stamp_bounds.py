"""Record the training ranges (plausibility bounds) in shipped models trained before they existed.

``rtdecode train`` and the model builders now write ``bounds`` into every model file they
export. This script adds them to a model file that has none, from the same training data its
config names, without touching the weights: input ranges over the raw training recordings,
output ranges over the targets and the model's own predictions on those recordings (the
daemon's offline computation, ``rtdecode predict``); a classifier's probabilities get [0, 1].
The sidecar torch checkpoint gets the same bounds, so a re-export keeps them.

    python scripts/stamp_bounds.py                 # every model in MODELS that has no bounds
    python scripts/stamp_bounds.py openhdemg_gamma --force
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import onnx

from rtdecode.commands.predict import predict_recording
from rtdecode.nn.checkpoint import load_checkpoint, save_checkpoint
from rtdecode.nn.sidecar import sidecar_path
from rtdecode.nn.train import load_train_config, load_training_data
from rtdecode.runtime.bounds import ModelBounds, RangeStats, model_bounds, probability_range
from rtdecode.runtime.metadata import METADATA_KEY
from rtdecode.runtime.streaming import read_metadata

logger = logging.getLogger("stamp_bounds")
ROOT = Path(__file__).resolve().parents[1]

#: shipped model → the training config whose data it was fitted on
MODELS = {
    "openhdemg_gamma": "openhdemg_gamma.toml",
}


def bounds_for(model: Path, config: Path) -> ModelBounds:
    """The model's training ranges over the recordings its training config loads."""
    meta = read_metadata(model)
    data = load_training_data(load_train_config(config))
    inputs = [r.x for r in data.recordings]
    where = f"{len(inputs)} recordings of {config.name} ({data.provenance.get('data', '')})".strip()
    if meta.task == "classification":
        return ModelBounds(input=RangeStats.of(inputs), output=probability_range(len(meta.outputs)),
                           data=where)
    outputs: list[np.ndarray] = []
    for rec in data.recordings:
        outputs.append(predict_recording(model, rec)["y"])
        if rec.y is not None:
            outputs.append(rec.y)
    return model_bounds(inputs, outputs, data=where)


def stamp(model: Path, bounds: ModelBounds) -> None:
    """Write ``bounds`` into the model's metadata (and its sidecar checkpoint, when present)."""
    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = json.loads(props[METADATA_KEY])
    meta["bounds"] = bounds.model_dump()
    props[METADATA_KEY] = json.dumps(meta, separators=(",", ":"))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(model))
    read_metadata(model)  # validates
    side = sidecar_path(model)
    if side.exists():
        net, spec, extra = load_checkpoint(side)
        save_checkpoint(side, net, spec, {**extra, "bounds": bounds.model_dump()})


def main() -> None:
    """Stamp the named (default: all) shipped models that have no bounds yet."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(MODELS), help=f"models ({', '.join(MODELS)})")
    ap.add_argument("--force", action="store_true", help="recompute bounds a model already has")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in args.names:
        path = ROOT / "models" / f"{name}.onnx"
        if read_metadata(path).bounds is not None and not args.force:
            logger.info("%s already has bounds (use --force to recompute)", name)
            continue
        b = bounds_for(path, ROOT / "configs" / "train" / MODELS[name])
        stamp(path, b)
        logger.info("%s: outputs %s .. %s (%s)", name, np.round(b.output.min, 3).tolist(),
                    np.round(b.output.max, 3).tolist(), b.data)


if __name__ == "__main__":
    main()
