"""Fitting loops of M2M-Net: the autoencoder on volumes, the mappers on codes (seed 001, 2.4).

Both minimise the mean squared error plus ``l1 · Σ|conv kernel weights|`` with mini-batches,
the configured optimiser (paper: SGD with momentum for the autoencoder, Adadelta for the
mapper) and a time-based learning-rate decay; each stops early on a validation split and
keeps the weights of its best validation epoch.

Volumes reach the loops as float16 |E| arrays (N, X, Y, Z), V/m; :class:`VolumePrep` turns a
batch of them into the network input (firing transform, min-max scaling) on the fly, so a
session never sits in memory as float32 64³ tensors.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from rtdecode.nn.m2m.config import OptimizerConfig
from rtdecode.nn.m2m.model import Autoencoder, Encoder, Mapper, conv_l1
from rtdecode.tms.m2m_data import MinMax
from rtdecode.tms.volume import FiringConfig, firing

logger = logging.getLogger(__name__)

__all__ = ["FitHistory", "VolumePrep", "encode", "fit_autoencoder", "fit_mapper", "predict"]

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class VolumePrep:
    """|E| volume → network input: the firing transform (if any), then min-max scaling."""

    firing: FiringConfig | None
    scale: MinMax

    @classmethod
    def fit(cls, mags: np.ndarray, firing_cfg: FiringConfig | None, chunk: int = 64) -> VolumePrep:
        """One min-max range over all the (transformed) training volumes."""
        lo, hi = math.inf, -math.inf
        for i in range(0, len(mags), chunk):
            x = cls._transform(mags[i:i + chunk], firing_cfg)
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
        return cls(firing_cfg, MinMax(np.asarray(lo), np.asarray(hi)))

    @staticmethod
    def _transform(mags: np.ndarray, firing_cfg: FiringConfig | None) -> np.ndarray:
        m = np.asarray(mags, np.float32)
        return m if firing_cfg is None else firing(m, firing_cfg)

    def __call__(self, mags: np.ndarray) -> Tensor:
        """(B, X, Y, Z) |E| → float32 tensor (B, 1, X, Y, Z)."""
        x = self.scale.apply(self._transform(mags, self.firing))
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)).unsqueeze(1)


@dataclass
class FitHistory:
    """Per-epoch training and validation loss, the best epoch and the wall time."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0

    def to_json(self) -> dict:
        """Plain numbers."""
        return {"train": self.train, "val": self.val, "best_epoch": self.best_epoch,
                "seconds": round(self.seconds, 2)}


def _optimizer(params: Iterator[nn.Parameter], cfg: OptimizerConfig
               ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    p = list(params)
    if cfg.kind == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(p, lr=cfg.lr, momentum=cfg.momentum)
    elif cfg.kind == "adam":
        opt = torch.optim.Adam(p, lr=cfg.lr)
    else:
        opt = torch.optim.Adadelta(p, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (1.0 + cfg.lr_decay * e))
    return opt, sched


def _batches(n: int, size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, size):
        yield order[i:i + size]


def _fit(model: nn.Module, loss_of: Callable[[np.ndarray, bool], Tensor], n_train: int,
         val_loss: Callable[[], float], cfg: OptimizerConfig, seed: int, what: str
         ) -> tuple[nn.Module, FitHistory]:
    """The shared loop: epochs of shuffled mini-batches, decay, early stopping on ``val_loss``."""
    opt, sched = _optimizer(model.parameters(), cfg)
    rng = np.random.default_rng(seed)
    hist, best, best_state, stale = FitHistory(), math.inf, copy.deepcopy(model.state_dict()), 0
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        t_epoch = time.perf_counter()
        model.train()
        total = 0.0
        for idx in _batches(n_train, cfg.batch_size, rng):
            if len(idx) < 2:  # batch norm needs two samples
                continue
            opt.zero_grad()
            loss = loss_of(idx, True) + cfg.l1 * conv_l1(model)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        model.eval()
        hist.train.append(total / n_train)
        hist.val.append(val_loss())
        if hist.val[-1] < best:
            best, best_state, stale = hist.val[-1], copy.deepcopy(model.state_dict()), 0
            hist.best_epoch = epoch
        else:
            stale += 1
        took = time.perf_counter() - t_epoch
        logger.log(logging.INFO if took > 20 else logging.DEBUG, "%s epoch %d (%.0f s): train %.5g val %.5g",
                   what, epoch, took, hist.train[-1], hist.val[-1])
        if stale >= cfg.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - t0
    logger.info("%s: %d epochs in %.0f s, best val %.5g at epoch %d", what, len(hist.val),
                hist.seconds, best, hist.best_epoch)
    return model, hist


def fit_autoencoder(mags: np.ndarray, train: np.ndarray, val: np.ndarray, prep: VolumePrep,
                    channels: tuple[int, int], cfg: OptimizerConfig, seed: int
                    ) -> tuple[Autoencoder, FitHistory]:
    """Train the autoencoder to reconstruct the volumes ``mags[train]`` (|E|, float16 (N, X, Y, Z))."""
    torch.manual_seed(seed)
    ae = Autoencoder(channels)

    def loss_of(idx: np.ndarray, _train: bool, rows: np.ndarray = train) -> Tensor:
        x = prep(mags[np.sort(rows[idx])])
        return nn.functional.mse_loss(ae(x), x)

    def val_loss() -> float:
        with torch.no_grad():
            losses = [float(loss_of(b, False, val)) * len(b)
                      for b in _batches(len(val), cfg.batch_size, None)]
        return sum(losses) / max(len(val), 1)

    model, hist = _fit(ae, loss_of, len(train), val_loss, cfg, seed, "autoencoder")
    return model, hist  # type: ignore[return-value]


def encode(encoder: Encoder, mags: np.ndarray, prep: VolumePrep, batch: int = 16) -> np.ndarray:
    """Codes of every volume, float32 (N, *code_shape) (before the code scaling)."""
    encoder.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(mags), batch):
            out.append(encoder(prep(mags[i:i + batch]))[:, 0].numpy())
    return np.concatenate(out)


def fit_mapper(mapper: M, codes: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
               cfg: OptimizerConfig, seed: int, what: str) -> tuple[M, FitHistory]:
    """Train a mapper (or a module around one) on scaled codes float32 (N, *code_shape) → targets
    float (N, n_out); returns it with its best validation epoch's weights."""
    torch.manual_seed(seed)
    c = torch.from_numpy(np.ascontiguousarray(codes, np.float32)).unsqueeze(1)
    t = torch.from_numpy(np.asarray(y, np.float32))

    def loss_of(idx: np.ndarray, _train: bool, rows: np.ndarray = train) -> Tensor:
        r = torch.from_numpy(rows[idx])
        return nn.functional.mse_loss(mapper(c[r]), t[r])

    def val_loss() -> float:
        with torch.no_grad():
            return float(nn.functional.mse_loss(mapper(c[torch.from_numpy(val)]), t[torch.from_numpy(val)]))

    model, hist = _fit(mapper, loss_of, len(train), val_loss, cfg, seed, what)
    return model, hist  # type: ignore[return-value]


def predict(mapper: Mapper, codes: np.ndarray) -> np.ndarray:
    """Mapper outputs float64 (N, n_out) for scaled codes (N, *code_shape)."""
    mapper.eval()
    with torch.no_grad():
        return mapper(torch.from_numpy(np.ascontiguousarray(codes, np.float32)).unsqueeze(1)).double().numpy()
