"""``rtdecode predict MODEL INPUT --out preds.npz``: the daemon's computation, offline."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from rtdecode.config import DecoderConfig, PreprocessingConfig
from rtdecode.io.recording import Recording
from rtdecode.service.pipeline import Pipeline

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``predict`` sub-command."""
    p = sub.add_parser("predict", help="run a model over a recording file (same stages as live)")
    p.add_argument("model", help=".onnx model")
    p.add_argument("input", help="recording (.npz .csv .xdf .mat or a dataset folder)")
    p.add_argument("--out", required=True, help="output .npz (y, t, flags, names)")
    p.add_argument("--stream", default=None, help="XDF stream name")
    p.add_argument("--fs", type=float, default=None, help="sample rate for CSV without time")
    p.add_argument("--start-s", type=float, default=0.0, help="segment start, s")
    p.add_argument("--stop-s", type=float, default=None, help="segment end, s")
    p.add_argument("--index-channel", type=int, default=None,
                   help="replace this channel with the sample index (as `replay` does)")
    p.add_argument("--nonfinite", choices=["hold", "zero"], default="hold",
                   help="non-finite input policy (as preprocessing.nonfinite)")
    p.set_defaults(func=run)


def predict_recording(model: str | Path, rec: Recording, nonfinite: str = "hold") -> dict:
    """Run the pipeline over a whole recording in one pass.

    Returns
    -------
    dict
        ``y`` float32 (m, K), ``t`` float64 (m,), ``flags`` uint32 (m,), ``names`` list.
    """
    dcfg = DecoderConfig(name="offline", model=Path(model))
    pipe = Pipeline([dcfg], rec.fs, rec.n_channels, PreprocessingConfig(nonfinite=nonfinite)).open()
    assert rec.t is not None  # Recording fills it in __post_init__
    try:
        (out,) = pipe.process(rec.x, rec.t)
        return {"y": out.y, "t": out.t, "flags": out.flags, "names": pipe.decoders[0].names}
    finally:
        pipe.close()


def run(args: argparse.Namespace) -> int:
    """Read, (segment), run, write."""
    from rtdecode.io.readers import read_recording

    rec = read_recording(args.input, stream=args.stream, fs=args.fs)
    if args.start_s or args.stop_s is not None:
        rec = rec.segment(args.start_s, args.stop_s)
    if args.index_channel is not None:
        rec = rec.with_index_channel(args.index_channel)
    res = predict_recording(args.model, rec, args.nonfinite)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, y=res["y"], t=res["t"], flags=res["flags"], names=np.array(res["names"]))
    logger.info("wrote %s: %d rows × %d outputs", out, res["y"].shape[0], res["y"].shape[1])
    return 0
