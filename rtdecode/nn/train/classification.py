"""Fitting frame classifiers (seed 004): minibatch Adam with cross-entropy, early stopping on
the validation loss; scoring per sample, after the service's causal probability smoothing,
and as a confusion matrix.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from torch import nn

from rtdecode.decoders.smoothing import ProbabilitySmoother
from rtdecode.nn.train.common import frames_tensor, progress_bar
from rtdecode.nn.train.results import ClassifierFit, ClassifierHistory

logger = logging.getLogger(__name__)

__all__ = ["fit_classifier", "predict_proba", "smoothed_accuracy"]


def predict_proba(model: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Class probabilities of each frame (eval mode).

    Parameters
    ----------
    model : nn.Module
        A frame classifier (SConvNet, AllConvNet).
    x : float (N, C)
        Model frames.

    Returns
    -------
    float32 (N, G)
    """
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model(frames_tensor(x[i:i + batch]))[:, :, 0]
            out.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _epoch(model: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor, Y: torch.Tensor, batch_size: int,
           rng: np.random.Generator, bar: object, train_mode: Callable[[nn.Module], object]) -> float:
    """One pass over the shuffled training frames; the mean minibatch loss (NaN if none ran)."""
    train_mode(model)
    order = torch.from_numpy(rng.permutation(X.shape[0]))
    losses = []
    for i in range(0, X.shape[0], batch_size):
        idx = order[i:i + batch_size]
        if idx.numel() < 2:  # batch norm needs two samples
            continue
        loss = F.cross_entropy(model(X[idx])[:, :, 0], Y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        bar.update(1)  # type: ignore[attr-defined]
    return float(np.mean(losses)) if losses else math.nan


def fit_classifier(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, *, epochs: int, batch_size: int, lr: float, patience: int,
                   rng: np.random.Generator, weight_decay: float = 0.0, progress: bool = False,
                   desc: str = "train", early_stopping: bool = True,
                   train_mode: Callable[[nn.Module], object] = nn.Module.train) -> ClassifierFit:
    """Minibatch Adam with cross-entropy, early-stopped on the validation loss (seed 004).

    Parameters
    ----------
    model : nn.Module
        A frame classifier (batch norm and dropout active in training).
    x_train, x_val : float (N, C)
    y_train, y_val : int (N,)
    epochs, batch_size, lr, patience : training schedule (patience in epochs).
    rng : numpy Generator
        Batch order.
    early_stopping : bool
        Keep the epoch with the lowest validation loss and stop after ``patience`` epochs
        without one; False: run all ``epochs`` and keep the last (a fit whose epoch count
        was chosen before, e.g. on every trial).
    train_mode : callable
        Puts the model in training mode each epoch (default ``model.train()``; calibration
        keeps the frozen layers' batch norm in eval mode).

    Returns
    -------
    ClassifierFit
        The model is left with the kept epoch's weights, in eval mode.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    X = frames_tensor(x_train)
    Y = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    yv = np.asarray(y_val, dtype=np.int64)
    hist = ClassifierHistory()
    best_loss, best_epoch, best_state = math.inf, -1, copy.deepcopy(model.state_dict())
    t0 = time.perf_counter()
    ep = 0
    with progress_bar(epochs * max(1, X.shape[0] // batch_size), desc, progress) as bar:
        for ep in range(epochs):
            hist.train_loss.append(_epoch(model, opt, X, Y, batch_size, rng, bar, train_mode))
            p = predict_proba(model, x_val)
            val_loss = float(-np.mean(np.log(np.clip(p[np.arange(len(yv)), yv], 1e-12, None))))
            hist.val_loss.append(val_loss)
            hist.val_acc.append(float(np.mean(np.argmax(p, axis=1) == yv)))
            bar.set_postfix({"val_loss": f"{val_loss:.3f}", "val_acc": f"{hist.val_acc[-1]:.3f}"})
            if val_loss < best_loss or not early_stopping:
                best_loss, best_epoch, best_state = val_loss, ep, copy.deepcopy(model.state_dict())
            elif ep - best_epoch >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return ClassifierFit(history=hist, best_epoch=best_epoch, epochs_run=ep + 1,
                         seconds=time.perf_counter() - t0)


def smoothed_accuracy(proba: np.ndarray, y: np.ndarray, window: int, method: str) -> float:
    """Per-sample accuracy after the service's causal smoothing of a trial's probabilities."""
    sm = ProbabilitySmoother(proba.shape[1], window, method)  # type: ignore[arg-type]
    return float(np.mean(np.argmax(sm.step(proba), axis=1) == y))
