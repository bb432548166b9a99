"""``rtdecode predict MODEL INPUT --out preds.npz``: the daemon's computation, offline."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from rtdecode.config import DecoderConfig, PreprocessingConfig
from rtdecode.errors import ConfigError
from rtdecode.io.recording import Recording
from rtdecode.service.pipeline import Pipeline

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``predict`` sub-command."""
    p = sub.add_parser("predict", help="run a model over a recording file (same stages as live)",
                       description="rtdecode predict MODEL INPUT: one offline pass of a model over a "
                                   "recording. rtdecode predict SESSION.h5 [PART.h5 ...]: re-run a "
                                   "recorded session's decoders on its recorded input, served in the "
                                   "recorded chunks, and compare with what was published "
                                   "(docs/recording.md).")
    p.add_argument("model", help=".onnx model, or a session file (.h5) recorded by the daemon")
    p.add_argument("input", nargs="*",
                   help="recording (.npz .csv .xdf .mat .h5 or a dataset folder); with a session "
                        "as first argument: its later parts")
    p.add_argument("--out", required=True,
                   help="output .npz (y, t, flags, names; for a session TOPIC_y, TOPIC_t, TOPIC_flags)")
    p.add_argument("--check", action="store_true",
                   help="session: exit 1 unless every published estimate is reproduced exactly")
    p.add_argument("--model-path", action="append", default=[], metavar="DECODER=PATH",
                   help="session: use this file for a decoder's model (same SHA-256 as recorded)")
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

    if Path(args.model).suffix.lower() == ".h5":
        return _run_session(args)
    if len(args.input) != 1:
        raise ConfigError(f"rtdecode predict MODEL INPUT takes one input, got {len(args.input)}",
                          "give one recording file (or a session file .h5 as the first argument)")
    rec = read_recording(args.input[0], stream=args.stream, fs=args.fs)
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


def _run_session(args: argparse.Namespace) -> int:
    """Re-run a recorded session, write the outputs, print the comparison with the recording."""
    from rtdecode.record.reader import read_session
    from rtdecode.record.reproduce import compare, reproduce

    models = {}
    for item in args.model_path:
        name, sep, path = item.partition("=")
        if not sep:
            raise ConfigError(f"--model-path {item!r} is not DECODER=PATH", "e.g. --model-path dec=m.onnx")
        models[name] = Path(path)
    session = read_session([args.model, *args.input])
    res = reproduce(session, models)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{t}_{k}": v for t, r in res.items() for k, v in r.items()}
    np.savez(out, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its bool option
    cmp = compare(session, res)
    if not session.complete:
        print(f"note: the recording is not complete ({session.dropped} dropped, first part "
              f"{session.attrs.get('part')}): differences are expected")
    ok = True
    for topic, c in cmp.items():
        print(f"{topic}: {c['equal']}/{c['compared']} equal (max |diff| {c['max_abs_diff']:.3g}); "
              f"{c['stale']} STALE safe values and {c['timing']} rows of failed/late model calls "
              f"not compared; {c['late']} flagged LATE (compared without that flag)")
        ok &= c["equal"] == c["compared"]
    logger.info("wrote %s", out)
    return 0 if ok or not args.check else 1
