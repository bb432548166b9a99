"""Fitting recurrent decoders (GRU, LSTM): truncated back-propagation through time over streams.

A recording stays one stream, as the daemon sees it. Each epoch cuts every segment into
``optim.streams`` contiguous pieces (their offsets drawn at random each epoch), runs them side
by side in windows of ``optim.bptt_frames`` frames and carries the hidden state from one
window to the next (detached: gradients reach back at most one window). The loss is the mean
squared error over the window's training frames only: held-out trials are run through the
network, as the daemon would, but never enter the loss. After each epoch the network runs
over every whole segment from zero state — exactly the offline ``forward`` that the streaming
export reproduces — and is scored on every set; the best epoch on each selection set is kept
(early stopping, ``optim.patience_epochs``).

The result is a :class:`~rtdecode.nn.train.results.RegressionFit` (``steps_run`` counts
epochs), so the A/B protocol selects, ensembles and stacks recurrent networks like the
convolutional ones. After training, :func:`finish_recurrent` measures the network's memory
horizon (its declared ``receptive_field``, see :mod:`rtdecode.nn.recurrent`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from rtdecode.errors import ConfigError, ModelError
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.recurrent import RecurrentDecoder, measure_memory
from rtdecode.nn.train.common import progress_bar
from rtdecode.nn.train.regression import Sequences, keep_best, masked_r2
from rtdecode.nn.train.results import BestStep, RegressionFit, RegressionHistory

if TYPE_CHECKING:
    from rtdecode.nn.train.config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["MEMORY_FRAMES_MAX", "fill_recurrent", "finish_recurrent", "fit_recurrent", "fit_recurrent_cfg",
           "recurrent_last", "stream_windows"]

#: Input frames :func:`finish_recurrent` measures the memory horizon on (at most).
MEMORY_FRAMES_MAX = 4000


def stream_windows(lengths: Sequence[int], streams: int, window: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each parallel stream starts, and how many windows an epoch runs.

    Every segment of ``n`` frames gives ``min(streams, n // window)`` pieces of equal length
    starting at a random offset, so the piece boundaries move between epochs.

    Returns
    -------
    seg : int (P,)
        Segment of each piece.
    start : int (P,)
        First frame of each piece.
    n_windows : int
        Windows of ``window`` frames that fit in the shortest piece (≥ 1).
    """
    seg, start, piece = [], [], []
    for i, n in enumerate(lengths):
        k = max(1, min(streams, n // window))
        size = n // k
        off = int(rng.integers(0, n - k * size + 1))
        seg += [i] * k
        start += [off + j * size for j in range(k)]
        piece += [size] * k
    return np.asarray(seg), np.asarray(start), max(1, min(piece) // window)


def _gather(t: Tensor, seg: np.ndarray, start: np.ndarray, a: int, b: int) -> Tensor:
    """Frames ``[start + a, start + b)`` of each piece: (P, …, b − a) from (S, …, T)."""
    return torch.stack([t[s, ..., o + a:o + b] for s, o in zip(seg.tolist(), start.tolist(), strict=True)])


def _scores(model: nn.Module, seqs: Sequences) -> dict[str, Tensor]:
    """R² per output of every set, the held-out sets on the intact frames (``x_eval``)."""
    model.eval()
    with torch.no_grad():
        pred = model(seqs.x)
        pred_eval = pred if seqs.x_eval is None else model(seqs.x_eval)
    return {k: masked_r2(pred if k == "train" else pred_eval, seqs.y, m) for k, m in seqs.masks.items()}


def _epoch(model: RecurrentDecoder, opt: torch.optim.Optimizer, seqs: Sequences, rng: np.random.Generator,
           window: int, streams: int, clip_norm: float) -> float:
    """One pass of truncated BPTT; the mean squared error per training frame and output."""
    seg, start, n_windows = stream_windows(seqs.lengths, streams, window, rng)
    train = seqs.masks["train"].to(torch.float32)
    model.train()
    states = model.zero_states(len(seg))
    total, count = 0.0, 0.0
    for w in range(n_windows):
        a, b = w * window, (w + 1) * window
        pred, states = model.step(_gather(seqs.x, seg, start, a, b), states)
        states = [s.detach() for s in states]
        y = _gather(seqs.y, seg, start, a, b)
        m = _gather(train, seg, start, a, b)[:, None, :]
        n = float(m.sum()) * y.shape[1]
        if n == 0:
            continue
        loss = (((pred - y) ** 2) * m).sum() / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        total += float(loss.detach()) * n
        count += n
    return total / count if count else math.nan


def fit_recurrent(model: nn.Module, seqs: Sequences, *, epochs: int, lr: float, patience: int,
                  window: int = 50, streams: int = 16, clip_norm: float = 1.0, weight_decay: float = 0.0,
                  select: Sequence[str] = ("a", "b"), seed: int = 0, progress: bool = False,
                  desc: str = "train") -> RegressionFit:
    """Adam with truncated BPTT on ``seqs.masks["train"]``, early stopping per set in ``select``.

    Parameters
    ----------
    model : RecurrentDecoder
    seqs : Sequences
        ``x`` (S, C, T) frames, ``y`` (S, K, T) z-scored targets, ``masks`` (S, T) per set.
    epochs : int
        Passes at most ("the model at epoch e" is the one after e passes).
    lr : float
        Adam learning rate.
    patience : int
        Stop when no set in ``select`` improved for this many epochs.
    window : int
        Truncation length, frames.
    streams : int
        Pieces per segment run side by side (the batch).
    clip_norm : float
        Gradient-norm clipping.
    select : sequence of str
        Sets whose best epoch is kept.
    seed : int
        Piece offsets.

    Returns
    -------
    RegressionFit
        ``steps_run`` is the last epoch scored.
    """
    if not isinstance(model, RecurrentDecoder):
        raise ModelError(f"fit_recurrent trains GRU / LSTM decoders, got a {type(model).__name__}",
                         "use fit_regression for convolutional and linear models")
    if float(seqs.masks["train"].sum()) == 0:
        raise ConfigError("no training frames left after loss.skip_s", "lower loss.skip_s or add trials")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = RegressionHistory(r2={k: [] for k in seqs.masks})
    best = {k: BestStep() for k in select}
    diverged, ep, t0 = False, 0, time.perf_counter()
    with progress_bar(epochs, desc, progress) as bar:
        for ep in range(epochs + 1):
            r2 = _scores(model, seqs)
            means = {k: float(v.mean()) for k, v in r2.items()}
            for k in seqs.masks:
                hist.r2[k].append(means[k])
            keep_best(best, ep, means, r2, model)
            if ep == epochs or ep - max(b.step for b in best.values()) > patience:
                break
            loss = _epoch(model, opt, seqs, rng, window, streams, clip_norm)
            hist.loss.append(loss)
            if not math.isfinite(loss):
                diverged = True
                break
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return RegressionFit(history=hist, best=best, steps_run=ep, diverged=diverged,
                         seconds=time.perf_counter() - t0)


def fit_recurrent_cfg(model: nn.Module, seqs: Sequences, cfg: TrainConfig, seed: int, desc: str
                      ) -> RegressionFit:
    """:func:`fit_recurrent` with the schedule of a training config (``optim``)."""
    o = cfg.optim
    return fit_recurrent(model, seqs, epochs=o.epochs, lr=o.lr, patience=o.patience_epochs,
                         window=o.bptt_frames, streams=o.streams, clip_norm=o.clip_norm,
                         weight_decay=o.weight_decay, seed=seed, progress=cfg.progress, desc=desc)


def finish_recurrent(model: nn.Module, data: TrainingData) -> None:
    """Set a trained network's ``memory_frames`` to its measured memory horizon (in place).

    Measured on the first :data:`MEMORY_FRAMES_MAX` input frames of the longest segment
    (inputs only; the horizon decides how long the daemon flags ``WARMUP``).
    """
    assert isinstance(model, RecurrentDecoder)
    seg = max(data.segments, key=lambda s: s.n_frames)
    model.memory_frames = measure_memory(model, seg.x[:MEMORY_FRAMES_MAX])
    logger.info("%s: memory horizon %d frames (%.2f s)", type(model).__name__, model.memory_frames,
                model.memory_frames / data.frame_rate_hz)


def fill_recurrent(c: dict[str, Any], data: TrainingData, where: str) -> dict[str, Any]:
    """Complete a GRU / LSTM decoder's arguments from the data (``n_in``, ``n_out``)."""
    c.setdefault("n_in", data.n_inputs)
    c.setdefault("n_out", data.n_outputs)
    if int(c["n_out"]) != data.n_outputs:
        raise ConfigError(f"{where}.n_out = {c['n_out']} but the data has {data.n_outputs} targets",
                          "leave n_out out (it is filled from the data)")
    return c


def recurrent_last(model: nn.Module) -> nn.Module:
    """The linear readout of a GRU / LSTM decoder (a 1-tap causal conv)."""
    assert isinstance(model, RecurrentDecoder)
    return model.readout
