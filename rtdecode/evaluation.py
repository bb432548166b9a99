"""Score a model on a labelled recording with the daemon's own computation.

Each recording runs through :func:`rtdecode.commands.predict.predict_recording` — the
service's pipeline: the model file's causal chain, ONNX Runtime with streaming state, one
pass from a fresh state per file — and every output frame is paired with the label or
target at the newest input sample it saw (the frame's time stamp). Frames whose sample is
left out by the labelling (between events without a rest class) are not scored.

Classification: accuracy per frame and after each causal smoothing window of the class
probabilities (the service's :class:`~rtdecode.decoders.smoothing.ProbabilitySmoother`,
``average`` and ``majority``), and the confusion matrix. Regression: R² per output.

How a recording is labelled comes from the model itself: ``rtdecode train`` stores its
``[data]`` table (:class:`~rtdecode.io.labelled.DataSpec`) and class names in the model's
provenance, so a new recording of the same rig is read the same way. Nothing here imports
torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.commands.predict import predict_recording
from rtdecode.decoders.smoothing import ProbabilitySmoother, window_frames
from rtdecode.errors import ConfigError, DataError
from rtdecode.io.labelled import DataSpec, LabelledSet, load_labelled
from rtdecode.metrics import confusion, r2_per_column
from rtdecode.runtime.metadata import ModelMetadata
from rtdecode.runtime.streaming import read_metadata

logger = logging.getLogger(__name__)

__all__ = ["Scored", "data_spec_of", "evaluate_model", "evaluation_plots", "labelled_for", "load_for_model",
           "score_frames", "spec_for"]

METHODS = ("average", "majority")


@dataclass
class Scored:
    """A model's outputs over a labelled set, paired with the truth.

    Attributes
    ----------
    name : str
    task : {"classification", "regression"}
    outputs : list of str
    rate_hz : float
        Output frame rate.
    y_hat : list of float32 (m_i, K)
        Per recording, every output frame (probabilities or estimates).
    truth : list of (m_i,) int or (m_i, K) float
        Label / targets at each frame.
    keep : list of bool (m_i,)
        Frames that are scored.
    files : list of str
    flagged : int
        Output frames carrying a non-zero flag (bad input, gap, …).
    """

    name: str
    task: str
    outputs: list[str]
    rate_hz: float
    y_hat: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    keep: list[np.ndarray] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    flagged: int = 0


def data_spec_of(meta: ModelMetadata, recording: str | Path) -> DataSpec:
    """How ``recording`` is read for ``meta``'s model: the model's stored ``[data]`` table with
    the path replaced (trials and file selection reset), or the plain defaults."""
    stored = dict(meta.provenance.get("data_spec") or {})
    for key in ("path", "trials", "events_per_trial", "trial_block_s", "max_trials"):
        stored.pop(key, None)
    return DataSpec.model_validate({**stored, "path": Path(recording)})


def spec_for(meta: ModelMetadata, recording: str | Path, config: str | Path | None = None) -> DataSpec:
    """How to label ``recording`` for ``meta``'s model: the ``[data]`` table of a training ``config``
    (its path, trials and file selection replaced), else the model's own (:func:`data_spec_of`)."""
    if config is None:
        return data_spec_of(meta, recording)
    from rtdecode.config import read_document

    table = dict(read_document(Path(config), "training config").get("data") or {})
    if not table:
        raise ConfigError(f"{config} has no [data] table", "give a training config (configs/train/*.toml)")
    for key in ("path", "trials", "events_per_trial", "trial_block_s", "max_trials"):
        table.pop(key, None)
    return DataSpec.model_validate({**table, "path": Path(recording)})


def labelled_for(meta: ModelMetadata, recordings: list[str], config: str | None = None) -> LabelledSet:
    """Every recording labelled for the model, as one set (each file keeps its own fresh state)."""
    sets = [load_for_model(meta, spec_for(meta, r, config)) for r in recordings]
    trials, offset = [], 0
    for t in (t for s in sets for t in s.trials):  # one trial per file, numbered across the sets
        trials.append(np.where(t >= 0, t + offset, -1))
        offset = max(offset, int(trials[-1].max(initial=0)))
    return LabelledSet(recordings=[r for s in sets for r in s.recordings], trials=trials,
                       class_names=sets[0].class_names, files=[f for s in sets for f in s.files])


def load_for_model(meta: ModelMetadata, spec: DataSpec) -> LabelledSet:
    """The labelled recordings, with a classifier's events mapped onto the model's classes."""
    classes = [o.name for o in meta.outputs] if meta.task == "classification" else None
    ls = load_labelled(spec.model_copy(update={"trials": "files"}), class_names=classes)
    if meta.task == "regression":
        names = [o.name for o in meta.outputs]
        for rec in ls.recordings:
            missing = [n for n in names if n not in rec.target_names]
            if missing:
                raise DataError(f"{rec.meta.get('file')} has no targets {missing} "
                                f"(it has {rec.target_names})",
                                "evaluate on a recording with the model's outputs as targets")
    return ls


def _truth_at(rec: Any, t_out: np.ndarray, trial: np.ndarray, meta: ModelMetadata) -> tuple[np.ndarray, ...]:
    idx = np.clip(np.searchsorted(np.asarray(rec.t), t_out), 0, rec.n_samples - 1)
    keep = np.asarray(trial)[idx] >= 0
    if meta.task == "classification":
        return rec.y[idx, 0].astype(np.int64), keep
    cols = [rec.target_names.index(o.name) for o in meta.outputs]
    return rec.y[idx][:, cols].astype(np.float64), keep


def evaluate_model(model: str | Path, labelled: LabelledSet) -> Scored:
    """Run ``model`` over every recording of ``labelled`` (fresh state each) and pair outputs with truth."""
    meta = read_metadata(model)
    if labelled.recordings and labelled.recordings[0].n_channels != meta.channels:
        raise DataError(f"the recording has {labelled.recordings[0].n_channels} channels, the model "
                        f"{meta.name} expects {meta.channels}", "evaluate on a recording of the model's rig")
    sc = Scored(name=meta.name, task=meta.task, outputs=[o.name for o in meta.outputs],
                rate_hz=meta.model_rate_hz)
    for rec, trial, f in zip(labelled.recordings, labelled.trials, labelled.files, strict=True):
        out = predict_recording(model, rec)
        truth, keep = _truth_at(rec, out["t"], trial, meta)
        sc.y_hat.append(np.asarray(out["y"], dtype=np.float32))
        sc.truth.append(truth)
        sc.keep.append(keep)
        sc.files.append(Path(f).name)
        sc.flagged += int(np.count_nonzero(out["flags"]))
    return sc


def _classification(sc: Scored, smoothing_s: list[float]) -> dict[str, Any]:
    G = len(sc.outputs)
    windows = {f"{s * 1e3:g}ms_{m}": (window_frames(s, sc.rate_hz), m) for s in smoothing_s for m in METHODS}
    hits: dict[str, list[np.ndarray]] = {"raw": [], **{k: [] for k in windows}}
    cm = np.zeros((G, G), dtype=np.int64)
    per_file = {}
    for f, p, y, k in zip(sc.files, sc.y_hat, sc.truth, sc.keep, strict=True):
        pred = np.argmax(p, axis=1)
        hits["raw"].append((pred == y)[k])
        cm += confusion(y[k], pred[k], G)
        for name, (w, m) in windows.items():
            sm = ProbabilitySmoother(G, w, m).step(p)  # type: ignore[arg-type]
            hits[name].append((np.argmax(sm, axis=1) == y)[k])
        per_file[f] = float(np.mean(hits["raw"][-1])) if k.any() else None
    acc = {name: float(np.mean(np.concatenate(h))) if sum(v.size for v in h) else None
           for name, h in hits.items()}
    return {"frames": int(sum(k.sum() for k in sc.keep)), "accuracy": acc.pop("raw"), "smoothed": acc,
            "smoothing_windows": {k: {"frames": w, "method": m, "delay_ms": 1e3 * (w - 1) / 2 / sc.rate_hz}
                                  for k, (w, m) in windows.items()},
            "per_file_accuracy": per_file, "confusion": cm.tolist(), "classes": sc.outputs}


def _regression(sc: Scored) -> dict[str, Any]:
    y = np.concatenate([t[k] for t, k in zip(sc.truth, sc.keep, strict=True)])
    yh = np.concatenate([p[k] for p, k in zip(sc.y_hat, sc.keep, strict=True)])
    r2 = r2_per_column(y, yh)
    return {"frames": int(y.shape[0]), "r2": dict(zip(sc.outputs, [float(v) for v in r2], strict=True)),
            "r2_mean": float(np.nanmean(r2))}


def score_frames(sc: Scored, smoothing_s: list[float] | None = None) -> dict[str, Any]:
    """The scores of :func:`evaluate_model`'s pairs (JSON-able).

    Parameters
    ----------
    sc : Scored
    smoothing_s : list of float
        Causal smoothing windows, s (classification).
    """
    if not any(k.any() for k in sc.keep):
        raise DataError(f"no labelled frames to score for {sc.name}",
                        "check the recording's labels (markers / targets) and the model's data spec")
    body = _classification(sc, list(smoothing_s or [])) if sc.task == "classification" else _regression(sc)
    return {"model": sc.name, "task": sc.task, "files": sc.files, "flagged_frames": sc.flagged, **body}


def evaluation_plots(scored: dict[str, Scored], summary: dict[str, Any], out: Path) -> list[str]:
    """Confusion matrices and accuracy vs smoothing window (classification) or traces (regression)."""
    from rtdecode.figures import confusion_figure, series_figure, traces_figure

    first = next(iter(scored.values()))
    if first.task == "classification":
        cms = {f"{k}: {sc.name}": np.asarray(summary[k]["confusion"]) for k, sc in scored.items()}
        confusion_figure(cms, first.outputs, out / "confusion.png")
        series = {}
        for k, sc in scored.items():
            sm = summary[k]["smoothing_windows"]
            ms = [0.0] + [1e3 * v["frames"] / sc.rate_hz for n, v in sm.items() if v["method"] == "average"]
            acc = [summary[k]["accuracy"]] + [summary[k]["smoothed"][n] for n, v in sm.items()
                                              if v["method"] == "average"]
            series[f"{k}: {sc.name}"] = (ms, acc)
        series_figure(series, "causal averaging window, ms", "accuracy", "accuracy per frame",
                      out / "smoothing.png")
        return ["confusion.png", "smoothing.png"]
    n = min(first.y_hat[0].shape[0], 1000)
    truth = np.asarray(first.truth[0][:n], dtype=np.float64)
    preds = {f"{k}: {sc.name}": sc.y_hat[0][:n] for k, sc in scored.items()}
    traces_figure(np.arange(n) / first.rate_hz, truth, preds, first.outputs,
                  f"{first.files[0]}: first {n} frames", out / "traces.png")
    return ["traces.png"]
