"""Fitting a recurrent decoder: truncated back-propagation through time over continuous streams.

A recording stays one stream, as the daemon sees it. Each epoch cuts every segment into
``streams`` contiguous pieces (their starting offsets drawn at random each epoch), runs them
side by side in windows of ``window`` frames and carries the hidden state from one window to
the next (detached: gradients flow back at most ``window`` frames). The loss is the squared
error over the training frames of the window only (held-out trials are run through the
network, as the daemon would, but never enter the loss). After each epoch the network runs
over every segment from zero state, exactly as offline ``forward`` / the streaming export, and
is scored on every set; the best epoch on each selection set is kept (early stopping).

The returned dict has the shape of :func:`rtdecode.nn.train.fit_regression`'s (``history``,
``best``, ``steps_run``, ``diverged``, ``seconds``), so the seed-000 A/B protocol selects,
ensembles and stacks recurrent networks like the convolutional ones. ``steps_run`` counts
epochs here.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rtdecode.errors import ConfigError
from rtdecode.nn.recurrent import RecurrentDecoder

logger = logging.getLogger(__name__)

__all__ = ["fit_recurrent", "stream_windows"]


def stream_windows(lengths: Sequence[int], streams: int, window: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each parallel stream starts: (segment index (P,), first frame (P,), windows per epoch).

    Every segment of ``n`` frames gives ``streams`` pieces of ``n // streams`` frames (at
    least ``window``) starting at a random offset, so the piece boundaries move between epochs.

    Returns
    -------
    seg : int (P,)
    start : int (P,)
    n_windows : int
        Windows of ``window`` frames that fit in the shortest piece.
    """
    seg, start, piece = [], [], []
    for i, n in enumerate(lengths):
        k = max(1, min(streams, n // window))
        size = n // k
        off = int(rng.integers(0, max(1, n - k * size + 1)))
        for j in range(k):
            seg.append(i)
            start.append(off + j * size)
            piece.append(size)
    return np.asarray(seg), np.asarray(start), max(1, min(piece) // window)


def _gather(t: Tensor, seg: np.ndarray, start: np.ndarray, a: int, b: int) -> Tensor:
    """Frames ``[start + a, start + b)`` of each stream: (P, …, b − a) from (S, …, T)."""
    return torch.stack([t[s, ..., o + a:o + b] for s, o in zip(seg.tolist(), start.tolist(), strict=True)])


def _scores(model: RecurrentDecoder, x: Tensor, y: Tensor, masks: dict[str, Tensor]
            ) -> dict[str, Tensor]:
    from rtdecode.nn.train import masked_r2

    model.eval()
    with torch.no_grad():
        pred = model(x)
    return {k: masked_r2(pred, y, m) for k, m in masks.items()}


def fit_recurrent(model: RecurrentDecoder, seqs: Any, *, epochs: int, lr: float, patience: int,
                  window: int = 50, streams: int = 16, clip_norm: float = 1.0, weight_decay: float = 0.0,
                  select: Sequence[str] = ("a", "b"), seed: int = 0, progress: bool = False,
                  desc: str = "train") -> dict[str, Any]:
    """Adam with truncated BPTT on ``seqs.masks["train"]``; early stopping per set in ``select``.

    Parameters
    ----------
    model : RecurrentDecoder
    seqs : rtdecode.nn.train.Sequences
        ``x`` (S, C, T) frames, ``y`` (S, K, T) z-scored targets, ``masks`` (S, T) per set,
        ``lengths``; ``x_eval`` (intact frames) when ``x`` is time-shuffled.
    epochs : int
        Passes over the streams at most.
    lr : float
        Adam learning rate.
    patience : int
        Stop when no set in ``select`` improved for this many epochs.
    window : int
        Truncation length, frames (gradients reach back at most this far).
    streams : int
        Pieces per segment run side by side (the batch).
    clip_norm : float
        Gradient norm clipping.
    select : sequence of str
        Sets whose best epoch is kept.
    seed : int
        Piece offsets.

    Returns
    -------
    dict
        As :func:`rtdecode.nn.train.fit_regression`; ``steps_run`` is the last epoch,
        ``updates`` the number of optimizer steps.
    """
    from rtdecode.nn.train import _progress

    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    train = seqs.masks["train"].to(torch.float32)
    if float(train.sum()) == 0:
        raise ConfigError("no training frames left after loss.skip_s", "lower loss.skip_s or add trials")
    x_eval = seqs.x if seqs.x_eval is None else seqs.x_eval
    hist: dict[str, Any] = {"loss": [], "r2": {k: [] for k in seqs.masks}}
    best: dict[str, dict[str, Any]] = {k: {"step": -1, "score": -math.inf} for k in select}
    diverged, updates, ep = False, 0, 0
    t0 = time.perf_counter()
    with _progress(epochs, desc, progress) as bar:
        for ep in range(epochs + 1):
            r2 = _scores(model, x_eval, seqs.y, seqs.masks)
            if seqs.x_eval is not None:  # the training set is scored on what it was trained on
                r2["train"] = _scores(model, seqs.x, seqs.y, {"train": seqs.masks["train"]})["train"]
            means = {k: float(v.mean()) for k, v in r2.items()}
            for k in seqs.masks:
                hist["r2"][k].append(means[k])
            for k in select:
                if means[k] > best[k]["score"]:
                    best[k] = {"step": ep, "score": means[k], "r2": dict(means),
                               "r2_outputs": {s: [float(v) for v in r2[s]] for s in r2},
                               "state": copy.deepcopy(model.state_dict())}
            if ep == epochs or ep - max(b["step"] for b in best.values()) > patience:
                break
            loss, n = _epoch(model, opt, seqs, train, rng, window, streams, clip_norm)
            updates += n
            hist["loss"].append(loss)
            if not math.isfinite(loss):
                diverged = True
                break
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return {"history": hist, "best": best, "steps_run": ep, "updates": updates, "diverged": diverged,
            "seconds": time.perf_counter() - t0}


def _epoch(model: RecurrentDecoder, opt: torch.optim.Optimizer, seqs: Any, train: Tensor,
           rng: np.random.Generator, window: int, streams: int, clip_norm: float) -> tuple[float, int]:
    """One pass of truncated BPTT; returns (mean loss per training frame and output, updates)."""
    seg, start, n_windows = stream_windows(seqs.lengths, streams, window, rng)
    model.train()
    states = model.zero_states(len(seg))
    total, frames, n = 0.0, 0.0, 0
    for w in range(n_windows):
        a, b = w * window, (w + 1) * window
        x = _gather(seqs.x, seg, start, a, b)
        y = _gather(seqs.y, seg, start, a, b)
        m = _gather(train, seg, start, a, b)[:, None, :]
        pred, states = model.step(x, states)
        states = [s.detach() for s in states]
        cnt = float(m.sum()) * y.shape[1]
        if cnt == 0:
            continue
        loss = (((pred - y) ** 2) * m).sum() / cnt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        total += float(loss.detach()) * cnt
        frames += cnt
        n += 1
    return (total / frames if frames else math.nan), n
