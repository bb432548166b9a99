"""``rtdecode thresholds MODEL RECORDING --out NEW.onnx``: recalibrate threshold crossings.

An iBCI model counts threshold crossings at ``threshold × noise RMS`` per channel; the RMS was
estimated on the training session's calibration period and travels in the model file. For a
new session (electrode impedances and noise change from day to day), this command estimates
it again on a recording of that session (e.g. 30–60 s at rest; no labels needed) and writes a
copy of the model whose chain carries the new values: the decoder is not refitted. See
docs/ibci.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["recalibrate_thresholds", "register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``thresholds`` sub-command."""
    p = sub.add_parser("thresholds", help="re-estimate an iBCI model's noise RMS (thresholds) on a "
                                          "recording of a new session")
    p.add_argument("model", help=".onnx model whose chain has a crossings / crossings_sbp stage")
    p.add_argument("recording", help="broadband recording of the new session (.xdf .npz .csv .mat)")
    p.add_argument("--out", required=True, help="the recalibrated model (.onnx)")
    p.add_argument("--stream", default=None, help="XDF stream name")
    p.add_argument("--start-s", type=float, default=0.0, help="calibration period start, s")
    p.add_argument("--stop-s", type=float, default=None, help="calibration period end, s")
    p.add_argument("--threshold", type=float, default=None,
                   help="a new threshold multiple of the RMS (default: keep the model's, e.g. -4.5)")
    p.set_defaults(func=run)


def _check_stream(rec: Any, meta: Any) -> None:
    from rtdecode.errors import DataError

    if not np.isclose(rec.fs, meta.rate_hz, rtol=1e-6) or rec.n_channels != meta.channels:
        raise DataError(f"the recording has {rec.n_channels} channels at {rec.fs:g} Hz; the model takes "
                        f"{meta.channels} at {meta.rate_hz:g} Hz",
                        "record the same rig (channels and rate) the model was trained on")


def recalibrate_thresholds(args: argparse.Namespace) -> dict[str, Any]:
    """Estimate, write, reopen; returns the summary (old and new median RMS per stage)."""
    from rtdecode.export.onnx_graphs import rewrite_metadata
    from rtdecode.ibci.frontend import THRESHOLD_KINDS, recording_blocks
    from rtdecode.ibci.thresholds import recalibrate_chain
    from rtdecode.io.readers import read_recording
    from rtdecode.runtime.streaming import StreamingModel, read_metadata

    meta = read_metadata(args.model)
    rec = read_recording(args.recording, stream=args.stream)
    if args.start_s or args.stop_s is not None:
        rec = rec.segment(args.start_s, args.stop_s)
    _check_stream(rec, meta)
    specs = recalibrate_chain(meta.preprocessing, meta.rate_hz, meta.channels,
                              lambda: (x for x, _ in recording_blocks(rec)), args.threshold)
    stages = [(i, old, new) for i, (old, new) in enumerate(zip(meta.preprocessing, specs, strict=True))
              if new["kind"] in THRESHOLD_KINDS]
    summary = {"recording": Path(args.recording).name, "seconds": round(rec.duration_s, 3),
               "by": "rtdecode thresholds", "date": _dt.date.today().isoformat(),
               "stages": [{"index": i, "threshold": new["threshold"],
                           "noise_rms_median_before": float(np.median(old["noise_rms"])),
                           "noise_rms_median_after": float(np.median(new["noise_rms"]))}
                          for i, old, new in stages]}
    new_meta = meta.model_copy(update={"preprocessing": specs,
                                       "provenance": {**meta.provenance, "thresholds": summary}})
    out = rewrite_metadata(args.model, new_meta, args.out)
    with StreamingModel(out):  # the daemon's contract checks on the written file
        pass
    return {"model": str(out), **summary}


def run(args: argparse.Namespace) -> int:
    """Recalibrate and print what changed."""
    s = recalibrate_thresholds(args)
    print(f"wrote {s['model']}: thresholds from {s['seconds']:g} s of {s['recording']}")
    for st in s["stages"]:
        print(f"  stage {st['index']}: {st['threshold']:g} x RMS; median RMS "
              f"{st['noise_rms_median_before']:.3g} -> {st['noise_rms_median_after']:.3g}")
    return 0
