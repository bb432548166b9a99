"""Seed 004's leave-one-trial-out protocol run (classification).

Per fold each network is trained with minibatch Adam and cross-entropy
(:func:`~rtdecode.nn.train.classification.fit_classifier`), early-stopped on a validation
trial, and scored per sample on the test trial, raw and after the service's causal
probability smoothing; an LDA on time-domain features can run beside it on the same folds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from rtdecode.decoders.smoothing import window_frames
from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError
from rtdecode.nn.baselines import LDA, td_features
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.models import count_parameters
from rtdecode.nn.protocols import Fold, leave_one_trial_out
from rtdecode.nn.train.classification import confusion, fit_classifier, predict_proba, smoothed_accuracy
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.config import ModelEntry, TrainConfig
from rtdecode.nn.train.families import build_model
from rtdecode.nn.train.results import FoldScore, LdaResult, LotoModel, LotoRun, RunResult

logger = logging.getLogger(__name__)

__all__ = ["run_loto"]

Log = Callable[[str], None]


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    if n is None or x.shape[0] <= n:
        return x, y
    idx = np.sort(rng.choice(x.shape[0], size=n, replace=False))
    return x[idx], y[idx]


def _lda_features(cfg: TrainConfig, data: TrainingData) -> list[np.ndarray]:
    """TD features of every sample of every recording, through the data chain's filter stages."""
    if not math.isclose(data.frame_rate_hz, data.rate_hz):
        raise ConfigError("protocol.baselines = ['lda'] needs model frames at the input rate",
                          "drop the LDA baseline or the resampling stage")
    specs = [s for s in data.preprocessing if s["kind"] == "butter"]
    window = max(2, int(round(cfg.protocol.lda_window_s * data.rate_hz)))
    out = []
    for rec, seg in zip(data.recordings, data.segments, strict=True):
        xf, _ = build_chain(specs, rec.fs, rec.n_channels).process(rec.x, np.asarray(rec.t))
        if xf.shape[0] != seg.n_frames:
            raise ConfigError("the LDA chain and the data chain give different frame counts",
                              "use a chain without resampling for the LDA baseline")
        out.append(td_features(xf, window, cfg.protocol.lda_threshold).astype(np.float32))
    return out


def _lda_fold(cfg: TrainConfig, data: TrainingData, feats: list[np.ndarray], fold: Fold, lda: LdaResult,
              y_test: np.ndarray, log: Log) -> None:
    """Fit the LDA on the fold's training and validation trials (every ``lda_stride``-th window)."""
    trials_fit = list(fold.train) + list(fold.val)
    Xf, yf = [], []
    for f, s in zip(feats, data.segments, strict=True):
        idx = np.flatnonzero(np.isin(s.trial, trials_fit))[::cfg.protocol.lda_stride]
        Xf.append(f[idx])
        yf.append(s.y[idx])
    model = LDA().fit(np.concatenate(Xf), np.concatenate(yf))
    x_test = [f[s.trial == fold.test] for f, s in zip(feats, data.segments, strict=True)]
    pred = model.predict(np.concatenate(x_test))
    acc = float(np.mean(pred == y_test))
    lda.folds.append({"test": fold.test, "accuracy": acc, "train_windows": int(sum(len(v) for v in yf))})
    lda.confusion += confusion(y_test, pred, lda.n_classes)
    log(f"fold {fold.test} LDA: accuracy {acc:.3f}")


def _network_fold(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, fold: Fold, fi: int,
                  split: tuple[np.ndarray, ...], run: LotoRun, result: RunResult, log: Log) -> None:
    """Train one network on one fold, score it on the test trial and record it."""
    xtr, ytr, xva, yva, xte, yte = split
    seed_all(cfg.seed + fi)
    model = build_model(entry, data)
    o = cfg.optim
    fit = fit_classifier(model, xtr, ytr, xva, yva, epochs=o.epochs, batch_size=o.batch_size, lr=o.lr,
                         patience=o.patience_epochs, weight_decay=o.weight_decay,
                         rng=np.random.default_rng(cfg.seed + fi), progress=cfg.progress,
                         desc=f"{entry.name} fold {fold.test}")
    t0 = time.perf_counter()
    proba = predict_proba(model, xte)
    pred = np.argmax(proba, axis=1)
    score = FoldScore(test=fold.test, val=list(fold.val), train_frames=int(xtr.shape[0]),
                      accuracy=float(np.mean(pred == yte)), best_epoch=fit.best_epoch,
                      epochs_run=fit.epochs_run,
                      fit_seconds=fit.seconds,
                      smoothed={k: smoothed_accuracy(proba, yte, w, m) for k, (w, m) in run.windows.items()})
    score.predict_seconds = time.perf_counter() - t0
    lm = run.models[entry.name]
    lm.folds.append(score)
    lm.confusion += confusion(yte, pred, lm.n_classes)
    if lm.parameters is None:
        lm.parameters = count_parameters(model)
    result.curves.setdefault(entry.name, {})[str(fold.test)] = fit.history.to_json()
    if fold.test == run.export_fold:
        result.models[entry.name] = model
    log(f"fold {fold.test} {entry.name}: accuracy {score.accuracy:.3f} "
        + " ".join(f"{k} {v:.3f}" for k, v in score.smoothed.items())
        + f" ({fit.epochs_run} epochs, {fit.seconds:.0f} s)")


def run_loto(cfg: TrainConfig, data: TrainingData, log: Log = logger.info) -> RunResult:
    """Seed 004's leave-one-trial-out protocol for every configured network (and the LDA)."""
    folds = leave_one_trial_out(data.trials, val_trials=cfg.protocol.val_trials, folds=cfg.protocol.folds)
    G = data.n_outputs
    export_fold = cfg.export.fold if cfg.export.fold is not None else folds[0].test
    if export_fold not in [f.test for f in folds]:
        raise ConfigError(f"export.fold {export_fold} is not one of the folds run "
                          f"({[f.test for f in folds]})", "pick a test trial of protocol.folds")
    run = LotoRun(
        folds=[{"test": f.test, "val": list(f.val), "train": list(f.train)} for f in folds],
        classes=list(data.class_names or []), frame_rate_hz=data.frame_rate_hz,
        windows={f"{s * 1e3:g}ms_{m}": (window_frames(s, data.frame_rate_hz), m)
                 for s in cfg.protocol.smoothing_s for m in cfg.protocol.smoothing_methods},
        max_train_frames=cfg.optim.max_train_frames, max_val_frames=cfg.optim.max_val_frames,
        export_fold=export_fold, models={e.name: LotoModel(kind=e.kind, n_classes=G) for e in cfg.models})
    feats = None
    if "lda" in cfg.protocol.baselines:
        feats = _lda_features(cfg, data)
        run.lda = LdaResult(window_s=cfg.protocol.lda_window_s, threshold=cfg.protocol.lda_threshold,
                            stride=cfg.protocol.lda_stride, n_classes=G)
    result = RunResult(run=run, models={}, data=data)
    rng = np.random.default_rng(cfg.seed)
    for fi, fold in enumerate(folds):
        xtr, ytr = _subsample(*data.frames(fold.train), cfg.optim.max_train_frames, rng)
        xva, yva = _subsample(*data.frames(fold.val), cfg.optim.max_val_frames, rng)
        xte, yte = data.frames([fold.test])
        for entry in cfg.models:
            _network_fold(cfg, entry, data, fold, fi, (xtr, ytr, xva, yva, xte, yte), run, result, log)
        if run.lda is not None and feats is not None:
            _lda_fold(cfg, data, feats, fold, run.lda, yte, log)
    return result
