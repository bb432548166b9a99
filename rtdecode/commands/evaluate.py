"""``rtdecode evaluate MODEL RECORDING…``: score a model on labelled recordings, beside the classic baseline.

The model runs over each recording exactly as the daemon would (``rtdecode predict``'s
pipeline); the recordings are labelled the way the model's training data was (its stored
``[data]`` table: marker templates, classes, target columns), or as ``--config`` says.
The classic baseline — TD features → LDA for a classifier, a Wiener filter over the model's
own frames for a regressor — is fitted on the model's training data (``--baseline auto``,
read from the model's provenance or ``--train-data``), written as a streaming ONNX model and
scored the same way; ``--baseline FILE.onnx`` scores an existing model instead.

The output folder gets ``evaluation.json`` (every number), ``baseline.onnx`` (when fitted)
and plots (``confusion.png`` and ``smoothing.png``, or ``traces.png``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from rtdecode.errors import ConfigError, DataError
from rtdecode.io.labelled import DataSpec

logger = logging.getLogger(__name__)

__all__ = ["evaluate", "register", "run"]

SMOOTHING_S = [0.05, 0.1, 0.2, 0.5]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = sub.add_parser("evaluate", help="score a model on labelled recordings (daemon's computation), "
                       "beside the classic baseline")
    p.add_argument("model", help=".onnx model")
    p.add_argument("recordings", nargs="+", help="labelled recordings (files or folders)")
    p.add_argument("--out", default=None, help="output folder (default out/evaluate/<model>)")
    p.add_argument("--config", default=None, help="a training config whose [data] table says how to label "
                   "the recordings (default: the model's own)")
    p.add_argument("--baseline", default="auto", help="'auto' (fit the classic decoder on the model's "
                   "training data), 'none', or an .onnx model to score beside it")
    p.add_argument("--train-data", default=None, help="where the model's training recordings are (for "
                   "--baseline auto, when they moved)")
    p.add_argument("--smoothing-s", type=float, nargs="*", default=SMOOTHING_S,
                   help="causal smoothing windows of the class probabilities, s")
    p.add_argument("--lda-window-s", type=float, default=None, help="baseline feature window, s")
    p.add_argument("--lda-threshold", type=float, default=None, help="baseline ZC/SSC dead zone")
    p.add_argument("--no-plot", action="store_true", help="write no figures")
    p.set_defaults(func=run)


def _fit_baseline(model: Path, meta: Any, args: argparse.Namespace, out: Path) -> Path:
    """Fit the classic decoder on the model's training data and write it as ``out/baseline.onnx``."""
    from rtdecode.classic import BaselineSettings, decoder_bounds, fit_baseline, stream_of, write_decoder
    from rtdecode.evaluation import load_for_model, spec_for

    stored = meta.provenance.get("data_spec")
    if stored is None and args.train_data is None:
        raise DataError(f"{model.name} does not record its training data",
                        "pass --train-data PATH (and --config for its labels), or --baseline none")
    moved = {"path": args.train_data} if args.train_data else {}
    spec = DataSpec.model_validate({**(stored or {}), **moved})
    if args.config is not None:
        spec = spec_for(meta, str(spec.path), args.config).model_copy(update={"trials": spec.trials})
    train = load_for_model(meta, spec)
    settings = BaselineSettings.of(meta, window_s=args.lda_window_s, threshold=args.lda_threshold)
    dec, chain = fit_baseline(meta, train, settings)
    prov = {"fitted_by": "rtdecode evaluate (the classic baseline on the model's training data)",
            "of_model": meta.name, "data": str(spec.path), "settings": dict(settings)}
    targets = None if meta.task == "classification" else [o.name for o in meta.outputs]
    bounds = decoder_bounds(dec, train.recordings, chain, targets)
    return write_decoder(dec, out / "baseline.onnx", name=f"{meta.name}_baseline", chain=chain,
                         provenance=prov, metrics={}, bounds=bounds, **stream_of(meta))


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Score the model (and the baseline) on the recordings; returns the summary written to JSON."""
    from rtdecode.evaluation import evaluate_model, labelled_for, score_frames
    from rtdecode.runtime.streaming import read_metadata

    model = Path(args.model)
    meta = read_metadata(model)
    out = Path(args.out) if args.out else Path("out") / "evaluate" / meta.name
    out.mkdir(parents=True, exist_ok=True)
    labelled = labelled_for(meta, args.recordings, args.config)
    scored = {"model": evaluate_model(model, labelled)}
    summary: dict[str, Any] = {"recordings": [str(r) for r in args.recordings], "model_file": str(model)}
    baseline: Path | None = None
    if args.baseline == "auto":
        try:
            baseline = _fit_baseline(model, meta, args, out)
        except (DataError, ConfigError) as exc:
            summary["baseline"] = {"skipped": f"{exc.what} ({exc.fix})"}
            logger.warning("baseline skipped: %s", exc.what)
    elif args.baseline != "none":
        baseline = Path(args.baseline)
    if baseline is not None:
        scored["baseline"] = evaluate_model(baseline, labelled)
    for key, sc in scored.items():
        summary[key] = score_frames(sc, list(args.smoothing_s))
    if not args.no_plot:
        from rtdecode.evaluation import evaluation_plots

        summary["plots"] = evaluation_plots(scored, summary, out)
    (out / "evaluation.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _line(key: str, s: dict[str, Any]) -> str:
    if "skipped" in s:
        return f"{key}: skipped — {s['skipped']}"
    if s["task"] == "regression":
        per = ", ".join(f"{k} {v:.3f}" for k, v in s["r2"].items())
        return f"{key} {s['model']}: R² {per} (mean {s['r2_mean']:.3f}) over {s['frames']} frames"
    sm = ", ".join(f"{k} {v:.3f}" for k, v in s["smoothed"].items() if k.endswith("average"))
    return f"{key} {s['model']}: accuracy {s['accuracy']:.3f} over {s['frames']} frames; smoothed: {sm}"


def run(args: argparse.Namespace) -> int:
    """Evaluate and print one line per scored model."""
    summary = evaluate(args)
    for key in ("model", "baseline"):
        if key in summary:
            print(_line(key, summary[key]))
    return 0
