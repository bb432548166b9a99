"""Fitting regressors: full-batch Adam over padded segments, and seed 000's ridge Wiener control.

Targets are z-scored with training statistics while fitting
(:func:`~rtdecode.nn.train.families.fold_target_scaling` undoes it in the last layer
afterwards). Every step's model is scored (R² per output) on every set from the same forward
pass that computes its loss, and the best step on each selection set is kept (early stopping).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from rtdecode.decoders.linear import lagged_design
from rtdecode.errors import ConfigError
from rtdecode.metrics import r2_per_column
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.models import LinearDecoder
from rtdecode.nn.protocols import shuffle_frames, skip_mask
from rtdecode.nn.train.common import progress_bar
from rtdecode.nn.train.results import AbScore, BestStep, LinearFit, RegressionFit, RegressionHistory

logger = logging.getLogger(__name__)

__all__ = ["Sequences", "fit_linear", "fit_regression", "keep_best", "make_sequences", "masked_r2", "r2_on",
           "r2_score", "segment_predictions", "set_masks"]


def r2_score(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """R² of each column (see :func:`rtdecode.metrics.r2_per_column`); float64 (K,)."""
    return r2_per_column(y, yhat)


def masked_r2(pred: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """R² per output over the masked frames.

    Parameters
    ----------
    pred, y : float (S, K, T)
    mask : bool (S, T)

    Returns
    -------
    float (K,)
    """
    m = mask[:, None, :].to(pred.dtype)
    n = m.sum().clamp_min(1.0)
    mean = (y * m).sum(dim=(0, 2), keepdim=True) / n
    ss_tot = (((y - mean) ** 2) * m).sum(dim=(0, 2))
    ss_res = (((y - pred) ** 2) * m).sum(dim=(0, 2))
    return 1.0 - ss_res / ss_tot.clamp_min(1e-12)


def set_masks(data: TrainingData, sets: Mapping[str, Sequence[int]],
              skip: int) -> dict[str, list[np.ndarray]]:
    """Per set, per segment: the frames of the set's trials past each segment's first ``skip``."""
    return {k: [np.isin(s.trial, np.asarray(list(v))) & skip_mask(s.n_frames, skip) for s in data.segments]
            for k, v in sets.items()}


def segment_predictions(model: nn.Module, data: TrainingData) -> list[np.ndarray]:
    """The model over every whole segment (eval mode): float32 (T, K) per segment."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in data.segments:
            y = model(torch.from_numpy(np.ascontiguousarray(s.x.T[None])))
            out.append(y[0].numpy().T)
    return out


def r2_on(data: TrainingData, preds: list[np.ndarray], trials: Sequence[int], skip: int) -> np.ndarray:
    """R² per output of per-segment predictions over the frames of ``trials`` (past ``skip``)."""
    yt, yp = [], []
    for s, p in zip(data.segments, preds, strict=True):
        m = np.isin(s.trial, np.asarray(list(trials))) & skip_mask(s.n_frames, skip)
        yt.append(s.y[m])
        yp.append(p[m])
    return r2_score(np.concatenate(yt), np.concatenate(yp))


@dataclass
class Sequences:
    """Padded segments for full-batch training.

    Attributes
    ----------
    x : float32 (S, C, T)
        Frames (zero after each segment's end).
    y : float32 (S, K, T)
        Z-scored targets.
    masks : dict of str → bool (S, T)
        Frames of each set (train, a, b), excluding padding and the skipped transient.
    lengths : list of int
        Frames of each segment.
    x_eval : float32 (S, C, T) or None
        Intact frames for scoring the validation / test sets when ``x`` is time-shuffled.
    """

    x: Tensor
    y: Tensor
    masks: dict[str, Tensor]
    lengths: list[int]
    x_eval: Tensor | None = None


def make_sequences(data: TrainingData, sets: Mapping[str, Sequence[int]], *, skip_frames: int,
                   y_mean: np.ndarray, y_std: np.ndarray, shuffle_rng: np.random.Generator | None = None
                   ) -> Sequences:
    """Stack the segments into padded tensors with one frame mask per set.

    With ``shuffle_rng`` (seed 000's time-shuffled control) the network is trained on a copy
    whose frames are permuted over the whole segment — every frame a training frame's
    receptive field can reach, held-out trials included, so no intact input remains in the
    training context — and scored on the intact frames (``x_eval``).
    """
    lengths = [s.n_frames for s in data.segments]
    t_max = max(lengths)
    S, C, K = len(lengths), data.n_inputs, data.n_outputs
    x = np.zeros((S, C, t_max), dtype=np.float32)
    y = np.zeros((S, K, t_max), dtype=np.float32)
    masks = {k: np.zeros((S, t_max), dtype=bool) for k in sets}
    x_eval = np.zeros_like(x) if shuffle_rng is not None else None
    seg_masks = set_masks(data, sets, skip_frames)
    for i, seg in enumerate(data.segments):
        n = seg.n_frames
        for k in masks:
            masks[k][i, :n] = seg_masks[k][i]
        xi = seg.x
        if shuffle_rng is not None and x_eval is not None:
            x_eval[i, :, :n] = xi.T
            xi = shuffle_frames(xi, np.ones(n, dtype=bool), shuffle_rng)
        x[i, :, :n] = xi.T
        y[i, :, :n] = ((seg.y - y_mean) / y_std).T
    return Sequences(x=torch.from_numpy(x), y=torch.from_numpy(y),
                     masks={k: torch.from_numpy(v) for k, v in masks.items()}, lengths=lengths,
                     x_eval=None if x_eval is None else torch.from_numpy(x_eval))


def _score_step(model: nn.Module, seqs: Sequences, pred: Tensor) -> dict[str, Tensor]:
    """R² per output of every set, from the training pass (or the intact frames' pass)."""
    with torch.no_grad():
        pred_eval = pred if seqs.x_eval is None else model(seqs.x_eval)
        return {k: masked_r2(pred if k == "train" else pred_eval, seqs.y, m) for k, m in seqs.masks.items()}


def keep_best(best: dict[str, BestStep], step: int, means: dict[str, float], r2: dict[str, Tensor],
               model: nn.Module) -> None:
    """Record ``step`` (with a copy of the weights) for every selection set it improves."""
    for k, b in best.items():
        if means[k] > b.score:
            per_output = {s: [float(v) for v in r2[s]] for s in r2}
            best[k] = BestStep(step, means[k], dict(means), per_output, copy.deepcopy(model.state_dict()))


def fit_regression(model: nn.Module, seqs: Sequences, *, steps: int, lr: float, patience: int,
                   loss: str = "sse", weight_decay: float = 0.0, select: Sequence[str] = ("a", "b"),
                   progress: bool = False, desc: str = "train") -> RegressionFit:
    """Full-batch Adam on ``seqs.masks["train"]``, scoring every step on every set.

    "The model at step s" is the one before update s. For each set in ``select`` the
    best-scoring step's weights are kept.

    Parameters
    ----------
    model : nn.Module
        A regression network (no dropout / batch norm: train and eval forward are equal).
    seqs : Sequences
    steps, lr : int, float
        Updates at most; Adam learning rate.
    patience : int
        Stop when no set in ``select`` improved for this many steps.
    loss : {"sse", "mse"}
        Sum (seed 000) or mean of squared errors over the training frames and outputs.
    select : sequence of str
        Sets whose best step is kept.

    Returns
    -------
    RegressionFit
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    m_train = seqs.masks["train"][:, None, :].to(torch.float32)
    n_train = float(m_train.sum()) * seqs.y.shape[1]
    if n_train == 0:
        raise ConfigError("no training frames left after loss.skip_s", "lower loss.skip_s or add trials")
    hist = RegressionHistory(r2={k: [] for k in seqs.masks})
    best = {k: BestStep() for k in select}
    diverged, step, t0 = False, 0, time.perf_counter()
    with progress_bar(steps, desc, progress) as bar:
        for step in range(steps + 1):
            model.train()
            pred = model(seqs.x)
            sq = ((pred - seqs.y) ** 2) * m_train
            total = sq.sum() if loss == "sse" else sq.sum() / n_train
            r2 = _score_step(model, seqs, pred)
            means = {k: float(v.mean()) for k, v in r2.items()}
            hist.loss.append(float(total.detach()) / (1.0 if loss == "mse" else n_train))
            for k in seqs.masks:
                hist.r2[k].append(means[k])
            if not math.isfinite(float(total.detach())):
                diverged = True
                break
            keep_best(best, step, means, r2, model)
            if step == steps or step - max(b.step for b in best.values()) > patience:
                break
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return RegressionFit(history=hist, best=best, steps_run=step, diverged=diverged,
                         seconds=time.perf_counter() - t0)


def _ridge_fits(data: TrainingData, design: list[np.ndarray], masks: dict[str, list[np.ndarray]],
                ridges: Sequence[float]) -> list[tuple[float, np.ndarray, np.ndarray, dict[str, np.ndarray],
                                                       list[np.ndarray]]]:
    """Closed-form ridge fits on the training frames: (λ, coef, b, R² per set, predictions) per λ."""
    X = np.concatenate([d[m] for d, m in zip(design, masks["train"], strict=True)])
    Y = np.concatenate([s.y[m] for s, m in zip(data.segments, masks["train"], strict=True)])
    Y = Y.astype(np.float64)
    Xm, Ym = X.mean(axis=0), Y.mean(axis=0)
    Xc = X - Xm
    G = Xc.T @ Xc
    XtY = Xc.T @ (Y - Ym)
    diag = float(np.mean(np.diag(G)))
    fits = []
    for lam in ridges:
        coef = np.linalg.solve(G + lam * diag * np.eye(G.shape[0]), XtY)
        b = Ym - Xm @ coef
        preds = [d @ coef + b for d in design]
        r2 = {}
        for k, mk in masks.items():
            yt = np.concatenate([s.y[m] for s, m in zip(data.segments, mk, strict=True)])
            yp = np.concatenate([p[m] for p, m in zip(preds, mk, strict=True)])
            r2[k] = r2_score(yt, yp)
        fits.append((float(lam), coef, b, r2, preds))
    return fits


def _lagged_linear(coef: np.ndarray, b: np.ndarray, c: int, k: int, lags: int) -> LinearDecoder:
    """A :class:`LinearDecoder` from ridge coefficients over a lagged design (oldest lag first)."""
    m = LinearDecoder(c, k, lags)
    W = coef.T.reshape(k, lags, c).transpose(0, 2, 1)  # (K, C, L)
    with torch.no_grad():
        m.conv.weight.copy_(torch.from_numpy(W.astype(np.float32)))
        assert m.conv.bias is not None
        m.conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
    return m.eval()


def fit_linear(data: TrainingData, sets: Mapping[str, Sequence[int]], *, lags: int, ridges: Sequence[float],
               skip_frames: int) -> LinearFit:
    """Seed 000's linear control: a ridge Wiener filter over ``lags`` frames, ridge chosen per set.

    For each validation set (``a``, ``b``) the ridge with the best R² on it is kept and
    scored on the other set, as the networks are.

    Returns
    -------
    LinearFit
        Both filters in physical units, their scores, and the A-chosen filter's predictions.
    """
    design = [lagged_design(s.x, lags) for s in data.segments]
    fits = _ridge_fits(data, design, set_masks(data, sets, skip_frames), ridges)
    fa = max(fits, key=lambda f: float(np.nanmean(f[3]["a"])))
    fb = max(fits, key=lambda f: float(np.nanmean(f[3]["b"])))
    c, k = data.n_inputs, data.n_outputs
    return LinearFit(
        scores=AbScore(r2_amax_b=list(fa[3]["b"]), r2_bmax_a=list(fb[3]["a"])),
        r2_train=float(np.nanmean(fa[3]["train"])), ridge={"a": fa[0], "b": fb[0]}, lags=lags,
        parameters=int(c * k * lags + k),
        models={"a": _lagged_linear(fa[1], fa[2], c, k, lags), "b": _lagged_linear(fb[1], fb[2], c, k, lags)},
        predictions=[p.astype(np.float32) for p in fa[4]],
    )
