"""``rtdecode calibrate MODEL RECORDING… --out NEW.onnx``: adapt a model to a new session.

A short labelled recording of the new session (e.g. two trials) refits only the
session-specific part: a network's input normalisation and first layer (seed 000's feature
layers for a GammaCNN), through its ``.torch.npz`` sidecar; a classic model (TD-LDA, Wiener
filter) is fitted again with its own settings. The recordings are labelled the way the
model's training data was (or as ``--config`` says). The new file keeps the model's chain,
outputs and state layout, records where it came from (``provenance.calibrated_from``) and
what was fitted (``metrics.calibration``), carries bounds from the calibration data, and is
verified (``rtdecode verify``) before the command returns.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["calibrate", "register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    p = sub.add_parser("calibrate", help="refit a model's session-specific part on a short recording")
    p.add_argument("model", help=".onnx model (a network with its .torch.npz sidecar, a TD-LDA or a Wiener)")
    p.add_argument("recordings", nargs="+", help="labelled calibration recordings of the new session")
    p.add_argument("--out", required=True, help="the calibrated model (.onnx)")
    p.add_argument("--config", default=None,
                   help="a training config whose [data] table labels the recordings")
    p.add_argument("--name", default=None, help="model name (default <name>_cal)")
    p.add_argument("--epochs", type=int, default=120, help="classifier: epochs at most (chosen by leaving "
                   "one calibration recording out when there are two or more)")
    p.add_argument("--steps", type=int, default=300, help="regressor: full-batch steps")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, default=None,
                   help="classifier: recalibrate this many times (seeds SEED, SEED+1, ...) and serve the "
                        "mean of them as one model (default 3; 1 = a single fit)")
    p.set_defaults(func=run)


def _network(args: argparse.Namespace, meta: Any, labelled: Any, out: Path,
             prov: dict[str, Any]) -> dict[str, Any]:
    try:
        from rtdecode.nn.calibrate import calibrate_network
        from rtdecode.nn.export import export_streaming, training_bounds
    except ImportError as exc:  # torch missing
        from rtdecode.errors import ModelError

        raise ModelError(f"recalibrating a network needs torch ({exc})",
                         "pip install 'rtdecode[train]'") from exc
    cal = calibrate_network(Path(args.model), meta, labelled, epochs=args.epochs, lr=args.lr,
                            steps=args.steps, seed=args.seed, members=args.members)
    prov["calibration"]["report"] = cal.report
    export_streaming(cal.model, out, rate_hz=meta.rate_hz, channels=meta.channels,
                     preprocessing=meta.preprocessing, outputs=meta.outputs, task=meta.task,
                     session=cal.session,
                     provenance=prov, metrics={"calibration": cal.report, "before_calibration": meta.metrics},
                     channel_names=list(meta.channel_names), grid_shape=meta.grid_shape,
                     input_unit=meta.input_unit, name=args.name or f"{meta.name}_cal",
                     bounds=training_bounds(cal.model, cal.data))
    return cal.report


def _classic(args: argparse.Namespace, meta: Any, labelled: Any, out: Path,
             prov: dict[str, Any]) -> dict[str, Any]:
    from rtdecode.classic import decoder_bounds, refit_decoder, stream_of, write_decoder

    dec = refit_decoder(meta, labelled)
    report = {"refit": dict(dec.describe()), "samples": int(sum(r.n_samples for r in labelled.recordings))}
    prov["calibration"]["report"] = report
    targets = None if meta.task == "classification" else [o.name for o in meta.outputs]
    chain = [dict(s) for s in meta.preprocessing]
    write_decoder(dec, out, name=args.name or f"{meta.name}_cal", chain=chain, provenance=prov,
                  metrics={"calibration": report, "before_calibration": meta.metrics},
                  bounds=decoder_bounds(dec, labelled.recordings, chain, targets), **stream_of(meta))
    return report


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Calibrate, write and verify; returns the summary."""
    from rtdecode.commands.train import git_commit
    from rtdecode.evaluation import labelled_for
    from rtdecode.nn.sidecar import sidecar_path
    from rtdecode.nn.verify import verify_model
    from rtdecode.runtime.streaming import read_metadata

    src = Path(args.model)
    meta = read_metadata(src)
    labelled = labelled_for(meta, args.recordings, args.config)
    out = Path(args.out)
    prov = {**meta.provenance,
            "calibrated_from": {"model": meta.name, "file": src.name,
                                "sha256": hashlib.sha256(src.read_bytes()).hexdigest()},
            "calibration": {"recordings": [f.name for f in labelled.files], "by": "rtdecode calibrate",
                            "git_commit": git_commit(), "date": _dt.date.today().isoformat()}}
    fit = _network if sidecar_path(src).exists() else _classic
    report = fit(args, meta, labelled, out, prov)
    check = verify_model(out)
    return {"model": str(out), "calibration": report, "verify_ok": bool(check["ok"])}


def run(args: argparse.Namespace) -> int:
    """Calibrate and print a summary; 1 when the written model fails verification."""
    s = calibrate(args)
    rep = s["calibration"]
    fitted = rep.get("fitted") or rep.get("refit", {}).get("kind")
    print(f"wrote {s['model']}: refitted {fitted} on {len(args.recordings)} recording(s); "
          f"verify {'PASS' if s['verify_ok'] else 'FAIL'}")
    for k in ("calibration_accuracy_before", "calibration_accuracy_after"):
        if k in rep:
            print(f"  {k.replace('_', ' ')}: {rep[k]:.3f}")
    return 0 if s["verify_ok"] else 1
