"""Seed 000's A/B protocol run (regression).

Trials go in groups of five to train / A / B (:func:`~rtdecode.nn.protocols.groups_of_five`).
Each network is trained ``protocol.restarts`` times with full-batch Adam
(:func:`~rtdecode.nn.train.regression.fit_regression`); per restart the best-on-A and
best-on-B steps are kept, :func:`~rtdecode.nn.protocols.select_ab` picks the reported pair,
and a pair is scored on the set it was not chosen on. Loss: squared error over the training
frames past the first ``skip_s`` of each continuous segment. Controls: a ridge linear (Wiener)
decoder over ``linear_history_s`` and the first network trained on time-shuffled inputs;
optionally the mean of every restart (``ensemble``) and that ensemble stacked with the
Wiener control (``stack_linear``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch
from torch import nn

from rtdecode.errors import ConfigError, ModelError
from rtdecode.nn.datasets import TrainingData, standardize_spec
from rtdecode.nn.models import StackedDecoder, count_parameters
from rtdecode.nn.protocols import groups_of_five, select_ab
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.config import ModelEntry, TrainConfig
from rtdecode.nn.train.families import build_model, family, fit_network, fold_target_scaling, regression_run
from rtdecode.nn.train.regression import (
    fit_linear,
    make_sequences,
    r2_on,
    segment_predictions,
    set_masks,
)
from rtdecode.nn.train.results import (
    AbNetwork,
    AbRun,
    AbScore,
    Attempt,
    LinearFit,
    RegressionFit,
    RunResult,
    ScoredPair,
)
from rtdecode.nn.train.workers import FitJob, run_jobs, worker_count

logger = logging.getLogger(__name__)

__all__ = ["refit_ab", "run_ab"]

Log = Callable[[str], None]
_FAILED = {"train": -np.inf, "a": -np.inf, "b": -np.inf}


@dataclass
class _Scaling:
    """Training statistics of the targets (the fit runs on z-scores)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, data: TrainingData, trials: Sequence[int]) -> _Scaling:
        _, y = data.frames(trials)
        std = y.std(axis=0)
        return cls(y.mean(axis=0).astype(np.float64), np.where(std > 0, std, 1.0).astype(np.float64))


def score_pair(data: TrainingData, sets: Mapping[str, Sequence[int]], skip: int,
               models: Mapping[str, nn.Module],
               *, amax_b: float = np.nan, bmax_a: float = np.nan, of: str | list[str] | None = None,
               members: dict[str, int] | None = None) -> ScoredPair:
    """Score a model pair the seed-000 way: ``models["a"]`` (chosen on A) on B, ``models["b"]`` on A."""
    preds = {key: segment_predictions(m, data) for key, m in models.items()}
    scores = AbScore(r2_amax_b=list(r2_on(data, preds["a"], sets["b"], skip)),
                     r2_bmax_a=list(r2_on(data, preds["b"], sets["a"], skip)), amax_b=amax_b, bmax_a=bmax_a)
    a = models["a"]
    return ScoredPair(kind=type(a).__name__, parameters=count_parameters(a),
                      receptive_field_frames=int(getattr(a, "receptive_field", 1)), scores=scores,
                      models=dict(models), predictions=preds, of=of, members=members)


def _attempt(fit: RegressionFit) -> Attempt:
    a, b = fit.best["a"], fit.best["b"]
    ok = a.step >= 0 and b.step >= 0
    train = fit.history.r2["train"]
    return Attempt(amax=dict(a.r2) if ok else dict(_FAILED), bmax=dict(b.r2) if ok else dict(_FAILED),
                   steps_run=fit.steps_run, seconds=fit.seconds, diverged=fit.diverged,
                   train_r2_max=float(np.nanmax(train)), train_r2_last=float(train[-1]))


def _restore(entry: ModelEntry, data: TrainingData, fit: RegressionFit, key: str,
             scaling: _Scaling) -> nn.Module:
    """A restart's model at its best step on set ``key``, in physical units."""
    m = build_model(entry, data)
    state = fit.best[key].state
    if state is not None:
        m.load_state_dict(state)
    return _finished(entry, data, fold_target_scaling(m, scaling.mean, scaling.std).eval())


def _finished(entry: ModelEntry, data: TrainingData, model: nn.Module) -> nn.Module:
    """``model`` after its family's ``finish`` step (if any), e.g. a measured memory horizon."""
    finish = family(entry.kind).finish
    if finish is not None:
        finish(model, data)
    return model


def _members(entry: ModelEntry, data: TrainingData, fits: Sequence[RegressionFit], key: str,
             scaling: _Scaling) -> list[nn.Module]:
    """Every restart's model at its best step on set ``key``; diverged ones left out."""
    out = [_restore(entry, data, f, key, scaling) for f in fits if f.best[key].found]
    if not out:
        raise ModelError(f"{entry.name}: no restart reached a best step on set {key.upper()}",
                         "lower optim.lr or raise optim.steps")
    return out


def _restarts(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, sets: Mapping[str, Sequence[int]],
              skip: int, scaling: _Scaling, *, shuffled: bool, log: Log) -> list[RegressionFit]:
    """``protocol.restarts`` fits of one network (seeds ``seed + r``)."""
    rng = np.random.default_rng(cfg.seed + (10_000 if shuffled else 0))
    seqs = make_sequences(data, sets, skip_frames=skip, y_mean=scaling.mean, y_std=scaling.std,
                          shuffle_rng=rng if shuffled else None)
    label = entry.name + (" (shuffled)" if shuffled else "")
    n = cfg.protocol.restarts
    jobs = []
    for r in range(n):  # built here in seed order; only the fits move to the workers
        seed_all(cfg.seed + r)
        run = partial(regression_run, cfg=cfg, kind=entry.kind, seqs=seqs, seed=cfg.seed + r,
                      desc=f"{label} {r + 1}/{n}")
        jobs.append(FitJob.of(build_model(entry, data), run, cfg.progress))
    fits = []
    for r, (_, fit) in enumerate(run_jobs(jobs, worker_count(cfg.workers, cfg.threads, n), cfg.threads)):
        a, b = fit.best["a"], fit.best["b"]
        log(f"{label} attempt {r + 1}: {fit.steps_run} steps in {fit.seconds:.1f} s; "
            f"Amax step {a.step} R² A {a.score:.3f} (B {a.r2.get('b', np.nan):.3f}); "
            f"Bmax step {b.step} R² B {b.score:.3f}")
        fits.append(fit)
    return fits


def _ab_network(cfg: TrainConfig, entry: ModelEntry, data: TrainingData, sets: dict[str, list[int]],
                skip: int, scaling: _Scaling, *, shuffled: bool, log: Log) -> AbNetwork:
    """Restarts of one network under the A/B protocol, the selected pair and (optionally) the ensemble."""
    fits = _restarts(cfg, entry, data, sets, skip, scaling, shuffled=shuffled, log=log)
    attempts = [_attempt(f) for f in fits]
    sel = select_ab([{"amax": a.amax, "bmax": a.bmax} for a in attempts])
    ia, ib = int(sel["amax_attempt"]), int(sel["bmax_attempt"])
    chosen = {"a": _restore(entry, data, fits[ia], "a", scaling),
              "b": _restore(entry, data, fits[ib], "b", scaling)}
    net = AbNetwork(
        config=dict(getattr(chosen["a"], "config", {})),
        chosen=score_pair(data, sets, skip, chosen, amax_b=sel["amax_b"], bmax_a=sel["bmax_a"]),
        amax_attempt=ia, bmax_attempt=ib, amax_best=replace(fits[ia].best["a"], state=None),
        bmax_best=replace(fits[ib].best["b"], state=None), attempts=attempts,
        curves={"amax": fits[ia].history, "bmax": fits[ib].history})
    if (cfg.protocol.ensemble or cfg.protocol.stack_linear) and not shuffled:
        net.members = {key: _members(entry, data, fits, key, scaling) for key in ("a", "b")}
        ens = {key: StackedDecoder.average(m) for key, m in net.members.items()}
        net.ensemble = score_pair(data, sets, skip, ens, of=entry.name,
                                  members={k: len(v) for k, v in net.members.items()})
    return net


def _stack_with_linear(data: TrainingData, sets: Mapping[str, Sequence[int]], skip: int, net: AbNetwork,
                       linear: LinearFit, name: str) -> ScoredPair:
    """The ensemble stacked with the linear control: ``y = W_e · ensemble + W_l · linear + b``.

    For each validation set (A, B) the head is fitted by least squares on that set's frames
    (the members and the linear control chosen on it are fixed), then the pair is scored the
    seed-000 way on the other set.
    """
    assert net.ensemble is not None
    stacked = {}
    k = data.n_outputs
    masks = set_masks(data, sets, skip)
    for key in ("a", "b"):
        lin_pred = segment_predictions(linear.models[key], data)
        feats = [np.column_stack([pe[m], pl[m], np.ones(int(m.sum()))])
                 for pe, pl, m in zip(net.ensemble.predictions[key], lin_pred, masks[key], strict=True)]
        ys = [s.y[m] for s, m in zip(data.segments, masks[key], strict=True)]
        coef = np.linalg.lstsq(np.concatenate(feats).astype(np.float64),
                               np.concatenate(ys).astype(np.float64), rcond=None)[0]  # (2K + 1, K)
        members = net.members[key]
        n = len(members)
        w = np.concatenate([coef[:k].T / n] * n + [coef[k:2 * k].T], axis=1)
        head_w, head_b = torch.from_numpy(w).float(), torch.from_numpy(coef[2 * k]).float()
        stacked[key] = StackedDecoder.from_members([*members, linear.models[key]], head_w, head_b)
    return score_pair(data, sets, skip, stacked, of=[f"{name}_ensemble", "control_linear"],
                      members={key: len(v) for key, v in net.members.items()})


def _keep(result: RunResult, name: str, pair: ScoredPair) -> None:
    """Make ``pair``'s A-chosen model exportable as ``name`` (with its predictions for the plots)."""
    result.models[name] = pair.models["a"]
    result.segment_predictions[name] = pair.predictions["a"]


def _controls(cfg: TrainConfig, data: TrainingData, run: AbRun, result: RunResult, scaling: _Scaling,
              log: Log) -> None:
    """The linear control (and its stack with the first ensemble) and the shuffled control."""
    sets, skip = run.sets, run.skip_frames
    if "linear" in cfg.protocol.controls:
        lags = max(1, int(round(cfg.protocol.linear_history_s * data.frame_rate_hz)))
        run.linear = fit_linear(data, sets, lags=lags, ridges=cfg.protocol.linear_ridge, skip_frames=skip)
        result.models["control_linear"] = run.linear.models["a"]
        result.segment_predictions["control_linear"] = run.linear.predictions
        log(f"linear control ({lags} lags): score {run.linear.score:.3f}")
        if cfg.protocol.stack_linear:
            first = cfg.models[0].name
            name = f"{first}_ensemble_linear"
            run.extra[name] = _stack_with_linear(data, sets, skip, run.networks[first], run.linear, first)
            _keep(result, name, run.extra[name])
            log(f"{name}: session score {run.extra[name].scores.score:.3f}")
    if "shuffled" in cfg.protocol.controls:
        run.shuffled = _ab_network(cfg, cfg.models[0], data, sets, skip, scaling, shuffled=True, log=log)
        log(f"shuffled control: score {run.shuffled.chosen.scores.score:.3f}")


def run_ab(cfg: TrainConfig, data: TrainingData, log: Log = logger.info) -> RunResult:
    """Seed 000's protocol (see the module notes) for every configured network and control."""
    sets = groups_of_five(data.trials)
    if cfg.preprocessing.standardize:
        data = data.with_stage(standardize_spec(data, sets["train"]))
    skip = int(round(cfg.loss.skip_s * data.frame_rate_hz))
    scaling = _Scaling.of(data, sets["train"])
    run = AbRun(sets=sets, skip_frames=skip, restarts=cfg.protocol.restarts)
    result = RunResult(run=run, models={}, data=data)
    for entry in cfg.models:
        net = _ab_network(cfg, entry, data, sets, skip, scaling, shuffled=False, log=log)
        run.networks[entry.name] = net
        _keep(result, entry.name, net.chosen)
        result.curves[entry.name] = {k: h.to_json() for k, h in net.curves.items()}
        s = net.chosen.scores
        log(f"{entry.name}: session score {s.score:.3f} (Amax(B) {s.amax_b:.3f}, Bmax(A) {s.bmax_a:.3f})")
        if cfg.protocol.ensemble and net.ensemble is not None:
            name = f"{entry.name}_ensemble"
            run.extra[name] = net.ensemble
            result.models[name] = net.ensemble.models["a"]
            log(f"{name}: session score {net.ensemble.scores.score:.3f} ({len(net.members['a'])} members)")
    _controls(cfg, data, run, result, scaling, log)
    result.set_masks = set_masks(data, sets, skip)
    return result



def refit_ab(cfg: TrainConfig, result: RunResult, name: str, log: Log = logger.info) -> str:
    """``export.all_data`` for the A/B protocol: model ``name`` fitted again on every trial.

    A network (``<name>``) is fitted once, ``<name>_ensemble`` ``protocol.restarts`` times
    (averaged), for the selected pair's mean best step (epoch), with no early stopping and the
    protocol's target scaling; ``control_linear`` is refitted with the protocol's ridge (the
    geometric mean of A's and B's). Replaces ``result.models[name]``; returns what it was
    fitted on.

    Raises
    ------
    ConfigError
        For a stack (its head is fitted on held-out frames) or an unknown name.
    """
    run = result.run
    assert isinstance(run, AbRun)
    data, sets, skip = result.data, run.sets, run.skip_frames
    every = sorted(t for v in sets.values() for t in v)
    if name == "control_linear" and run.linear is not None:
        ridge = float(np.sqrt(run.linear.ridge["a"] * run.linear.ridge["b"]))
        lin = fit_linear(data, {"train": every, "a": every, "b": every}, lags=run.linear.lags, ridges=[ridge],
                         skip_frames=skip)
        result.models[name] = lin.models["a"]
        return f"all {len(every)} trials, ridge {ridge:g}"
    base = name.removesuffix("_ensemble")
    entry = next((e for e in cfg.models if e.name == base), None)
    if entry is None or base not in run.networks:
        raise ConfigError(f"export.all_data: cannot refit {name!r} on all trials",
                          "export a network, '<name>_ensemble' or 'control_linear'")
    net = run.networks[base]
    budget = max(1, int(round((net.amax_best.step + net.bmax_best.step) / 2)))
    scaling = _Scaling.of(data, sets["train"])
    seqs = make_sequences(data, {"train": every, "a": sets["a"], "b": sets["b"]}, skip_frames=skip,
                          y_mean=scaling.mean, y_std=scaling.std)
    fixed = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={
        "steps": budget, "epochs": budget, "patience_steps": budget + 1, "patience_epochs": budget + 1})})
    members = []
    for r in range(cfg.protocol.restarts if name.endswith("_ensemble") else 1):
        model, fit = fit_network(fixed, entry, data, seqs, cfg.seed + 1000 + r, f"{base} all trials {r + 1}")
        if not fit.diverged:
            fold_target_scaling(model, scaling.mean, scaling.std).eval()
            members.append(_finished(entry, data, model))
    if not members:
        raise ModelError(f"{name}: every refit on all trials diverged", "lower optim.lr")
    result.models[name] = members[0] if len(members) == 1 else StackedDecoder.average(members)
    unit = "epochs" if family(entry.kind).fit else "steps"
    what = f"all {len(every)} trials, {len(members)} × {budget} {unit}"
    log(f"{name}: refitted on {what}")
    return what
