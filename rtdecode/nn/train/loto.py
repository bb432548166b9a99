"""Seed 004's leave-one-trial-out protocol run (classification).

Per fold each network is trained with minibatch Adam and cross-entropy
(:func:`~rtdecode.nn.train.classification.fit_classifier`), early-stopped on a validation
trial, and scored per sample on the test trial, raw and after the service's causal
probability smoothing; an LDA on time-domain features can run beside it on the same folds.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from rtdecode.classic import filter_stages
from rtdecode.decoders.smoothing import window_frames
from rtdecode.decoders.td import TDDecoder
from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError
from rtdecode.metrics import confusion
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.models import count_parameters
from rtdecode.nn.protocols import Fold, leave_one_trial_out
from rtdecode.nn.train.classification import predict_proba, smoothed_accuracy
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.config import ModelEntry, TrainConfig
from rtdecode.nn.train.families import build_model
from rtdecode.nn.train.results import FoldScore, LdaResult, LotoModel, LotoRun, RunResult
from rtdecode.nn.train.workers import FitJob, classifier_run, run_jobs, worker_count

logger = logging.getLogger(__name__)

__all__ = ["lda_decoder", "lda_inputs", "run_loto", "subsample"]

Log = Callable[[str], None]


def subsample(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` random frames (in time order) of ``x`` and ``y``."""
    if n is None or x.shape[0] <= n:
        return x, y
    idx = np.sort(rng.choice(x.shape[0], size=n, replace=False))
    return x[idx], y[idx]


@dataclass
class _LdaInputs:
    """The LDA's features of every sample, computed once over each whole recording."""

    chain: list[dict[str, Any]]
    feats: np.ndarray
    y: np.ndarray
    trial: np.ndarray
    n_inputs: int


def _windows_s(cfg: TrainConfig) -> dict[str, tuple[float, str]]:
    """The configured causal smoothing windows: name → (seconds, method)."""
    p = cfg.protocol
    return {f"{s * 1e3:g}ms_{m}": (s, m) for s in p.smoothing_s for m in p.smoothing_methods}


def lda_inputs(cfg: TrainConfig, data: TrainingData) -> _LdaInputs:
    """TD features of every input sample of every recording, through the data chain's filter stages
    (the LDA runs at the input rate, whatever the chain does after its filters)."""
    specs = filter_stages(data.preprocessing)
    dec = lda_decoder(cfg, data)
    feats = []
    for rec in data.recordings:
        xf, _ = build_chain(specs, rec.fs, rec.n_channels).process(rec.x, np.asarray(rec.t))
        feats.append(dec.features_of(xf).astype(np.float32))
    return _LdaInputs(chain=specs, feats=np.concatenate(feats), y=np.concatenate(data.sample_y),
                      trial=np.concatenate(data.sample_trials), n_inputs=data.recordings[0].n_channels)


def lda_decoder(cfg: TrainConfig, data: TrainingData) -> TDDecoder:
    """The configured (unfitted) classic decoder: TD features over ``lda_window_s`` → LDA."""
    p = cfg.protocol
    return TDDecoder(max(2, int(round(p.lda_window_s * data.rate_hz))), p.lda_threshold, p.lda_features,
                     head="lda", stride=p.lda_stride)


def _lda_fold(cfg: TrainConfig, data: TrainingData, inp: _LdaInputs, fold: Fold, run: LotoRun,
              result: RunResult, log: Log) -> None:
    """Fit the LDA on the fold's training and validation trials, score it on the test trial."""
    assert run.lda is not None
    fit_rows = np.flatnonzero(np.isin(inp.trial, list(fold.train) + list(fold.val)))
    dec = lda_decoder(cfg, data).fit_features(inp.feats, inp.y, fit_rows, n_inputs=inp.n_inputs,
                                              n_classes=run.lda.n_classes)
    test = inp.trial == fold.test
    proba = dec.map_features(inp.feats[test])
    y_test = inp.y[test]
    pred = np.argmax(proba, axis=1)
    acc = float(np.mean(pred == y_test))
    smoothed = {k: smoothed_accuracy(proba, y_test, window_frames(s, data.rate_hz), m)
                for k, (s, m) in _windows_s(cfg).items()}
    run.lda.folds.append({"test": fold.test, "accuracy": acc, "smoothed": smoothed,
                          "train_windows": int(fit_rows[::dec.stride].size)})
    run.lda.confusion += confusion(y_test, pred, run.lda.n_classes)
    if fold.test == run.export_fold:
        result.models["lda"] = dec
        result.chains["lda"] = inp.chain
    log(f"fold {fold.test} LDA: accuracy {acc:.3f}")


def _fold_job(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, fold: Fold, fi: int,
              split: tuple[np.ndarray, ...]) -> FitJob:
    """The fit of one network on one fold (built here, seeded by the fold)."""
    seed_all(cfg.seed + fi)
    model = build_model(entry, data)
    run = partial(classifier_run, split=split[:4], optim=cfg.optim, seed=cfg.seed + fi,
                  desc=f"{entry.name} fold {fold.test}")
    return FitJob.of(model, run, cfg.progress)


def _score_fold(entry: ModelEntry, fold: Fold, model: Any, fit: Any, split: tuple[np.ndarray, ...],
                run: LotoRun, result: RunResult, log: Log) -> None:
    """Score one fitted network on its fold's test trial and record it."""
    xtr, xte, yte = split[0], split[4], split[5]
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


def _fold_tasks(cfg: TrainConfig, data: TrainingData, folds: list[Fold]
                ) -> Iterator[tuple[ModelEntry, Fold, tuple[np.ndarray, ...], FitJob]]:
    """(entry, fold, split, job) in the order one process fits them, each fold's split built only
    when its first job is asked for (so one fold's frames at a time are held without workers)."""
    if not cfg.models:
        return
    rng = np.random.default_rng(cfg.seed)
    for fi, fold in enumerate(folds):
        xtr, ytr = subsample(*data.frames(fold.train), cfg.optim.max_train_frames, rng)
        xva, yva = subsample(*data.frames(fold.val), cfg.optim.max_val_frames, rng)
        split = (xtr, ytr, xva, yva, *data.frames([fold.test]))
        for entry in cfg.models:
            yield entry, fold, split, _fold_job(cfg, entry, data, fold, fi, split)


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
        windows={k: (window_frames(s, data.frame_rate_hz), m) for k, (s, m) in _windows_s(cfg).items()},
        max_train_frames=cfg.optim.max_train_frames, max_val_frames=cfg.optim.max_val_frames,
        export_fold=export_fold, models={e.name: LotoModel(kind=e.kind, n_classes=G) for e in cfg.models})
    lda_in = None
    if "lda" in cfg.protocol.baselines:
        lda_in = lda_inputs(cfg, data)
        run.lda = LdaResult(window_s=cfg.protocol.lda_window_s, threshold=cfg.protocol.lda_threshold,
                            stride=cfg.protocol.lda_stride, n_classes=G,
                            features=", ".join(f.upper() for f in cfg.protocol.lda_features) + " per channel")
    result = RunResult(run=run, models={}, data=data)
    meta, tasks = itertools.tee(_fold_tasks(cfg, data, folds))
    workers = worker_count(cfg.workers, cfg.threads, len(folds) * len(cfg.models))
    fitted = run_jobs((t[3] for t in tasks), workers, cfg.threads)
    for (entry, fold, split, _), (model, fit) in zip(meta, fitted, strict=True):
        _score_fold(entry, fold, model, fit, split, run, result, log)
    if lda_in is not None:
        for fold in folds:
            _lda_fold(cfg, data, lda_in, fold, run, result, log)
    return result
