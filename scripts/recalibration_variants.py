"""Recalibration variants of a frame classifier, scored on held-out trials of the new session.

The development tool behind docs/models.md ("Recalibration to a new session"): the model's
session part is refitted on the first ``--calibration`` trials of a flexemg session folder
(``002-001.mat`` …) as :func:`rtdecode.nn.calibrate.calibrate_network` does, with one of these
rules, and scored per frame (plain and with a causal 50 / 100 / 200 ms moving average) on the
session's other trials:

- ``loo-acc``   epochs by leaving one calibration trial out, best mean held-out accuracy (the rule
  ``rtdecode calibrate`` uses);
- ``loo-loss``  the same, lowest mean held-out loss;
- ``loo-sm5``   the same, best accuracy after a 5-epoch moving average of the curve;
- ``fixedN``    N epochs, no choice;
- ``emaD``      ``loo-acc`` on an exponential moving average (decay D per step) of the weights;
- ``ensK``      ``loo-acc`` with seeds SEED … SEED+K−1, their mean logits (``rtdecode calibrate``'s
  default, K = 3).

    python scripts/recalibration_variants.py MODEL.onnx SESSION_DIR --variants loo-acc,ens3 --seed 0
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rtdecode.evaluation import labelled_for
from rtdecode.nn.calibrate import _freeze, calibration_data, load_network
from rtdecode.nn.train.classification import _epoch, fit_classifier, frames_tensor, predict_proba
from rtdecode.nn.train.common import seed_all
from rtdecode.nn.train.families import FAMILIES
from rtdecode.runtime.streaming import read_metadata

MAX_EPOCHS = 120


class _NoBar:
    def update(self, n: int) -> None:
        """Progress is not shown."""


def fit(model: nn.Module, part_of: Any, xy: tuple, xy_val: tuple, epochs: int, seed: int,
        ema: float = 0.0) -> tuple[list[float], list[float]]:
    """Adam on the session part for ``epochs``; held-out accuracy and loss after each epoch.

    With ``ema`` > 0 the weights scored (and left in the model) are their moving average.
    """
    seed_all(seed)
    _, train_mode = _freeze(model, part_of(model))
    if not ema:
        h = fit_classifier(model, *xy, *xy_val, epochs=epochs, batch_size=128, lr=1e-3, patience=epochs,
                           rng=np.random.default_rng(seed), early_stopping=False, train_mode=train_mode).history
        return h.val_acc, h.val_loss
    params = [p for p in model.parameters() if p.requires_grad]
    avg = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-3)
    x, y = frames_tensor(xy[0]), torch.from_numpy(np.asarray(xy[1], dtype=np.int64))
    rng, acc = np.random.default_rng(seed), []
    for _ in range(epochs):
        step = _AveragingAdam(opt, params, avg, ema)  # duck-types the optimizer _epoch uses
        _epoch(model, step, x, y, 128, rng, _NoBar(), train_mode)  # type: ignore[arg-type]
        live = [p.detach().clone() for p in params]
        _copy(params, avg)
        model.eval()
        acc.append(float(np.mean(np.argmax(predict_proba(model, xy_val[0]), 1) == xy_val[1])))
        if len(acc) < epochs:  # train on from the live weights; the last epoch leaves the average
            _copy(params, live)
    return acc, [np.nan] * len(acc)


def _copy(dst: list, src: list) -> None:
    with torch.no_grad():
        for d, s in zip(dst, src, strict=True):
            d.copy_(s)


class _AveragingAdam:
    """Adam whose every step also updates the weights' moving average."""

    def __init__(self, opt: torch.optim.Optimizer, params: list, avg: list, decay: float) -> None:
        self.opt, self.params, self.avg, self.decay = opt, params, avg, decay

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As Adam's."""
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """Adam's step, then the average."""
        self.opt.step()
        with torch.no_grad():
            for a, p in zip(self.avg, self.params, strict=True):
                a.mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)


def choose_epochs(base: nn.Module, part_of: Any, cal: Any, rule: str, seed: int, ema: float = 0.0) -> int:
    """Leave one calibration trial out: the epoch count by ``rule`` (acc / loss / sm5)."""
    accs, losses = [], []
    for held in cal.trials:
        rest = [t for t in cal.trials if t != held]
        a, lo = fit(copy.deepcopy(base), part_of, cal.frames(rest), cal.frames([held]), MAX_EPOCHS, seed, ema)
        accs.append(a)
        losses.append(lo)
    acc = np.mean(accs, axis=0)
    if rule == "loss":
        return int(np.argmin(np.mean(losses, axis=0))) + 1
    if rule == "sm5":
        acc = np.convolve(np.pad(acc, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    return int(np.argmax(acc)) + 1


def recalibrate(base: nn.Module, part_of: Any, cal: Any, variant: str, seed: int) -> list[nn.Module]:
    """The recalibrated model(s) of one variant (several for an ensemble)."""
    xy = cal.frames(cal.trials)
    if variant.startswith("ens"):
        seeds = range(seed, seed + int(variant[3:]))
        return [m for s in seeds for m in recalibrate(base, part_of, cal, "loo-acc", s)]
    ema = float(variant[3:]) if variant.startswith("ema") else 0.0
    if variant.startswith("fixed"):
        epochs = int(variant[5:])
    else:
        epochs = choose_epochs(base, part_of, cal, variant.split("-")[-1] if not ema else "acc", seed, ema)
    model = copy.deepcopy(base)
    fit(model, part_of, xy, xy, epochs, seed, ema)
    return [model.eval()]


def score(models: list[nn.Module], ev: Any) -> dict[str, float]:
    """Per-frame accuracy, %, plain and after a causal 50 / 100 / 200 ms average (100 Hz frames)."""
    out = {}
    for w in (1, 5, 10, 20):
        hit = n = 0
        for t in ev.trials:
            x, y = ev.frames([t])
            lp = np.mean([np.log(np.clip(predict_proba(m, x), 1e-30, None)) for m in models], axis=0)
            p = np.exp(lp - lp.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            c = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
            idx = np.arange(1, p.shape[0] + 1)
            p = (c[idx] - c[np.maximum(idx - w, 0)]) / np.minimum(idx, w)[:, None]
            hit += int(np.sum(np.argmax(p, 1) == y))
            n += y.size
        out["raw" if w == 1 else f"{w * 10}ms"] = round(100 * hit / n, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the variants and print (and optionally write) their scores."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("session", type=Path, help="a flexemg session folder (002-001.mat …)")
    ap.add_argument("--variants", default="loo-acc,ens3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=int, default=2, help="the first N trials calibrate")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    meta = read_metadata(args.model)
    files = sorted(args.session.glob("*-0[0-9][0-9].mat"))
    cal = calibration_data(meta, labelled_for(meta, [str(f) for f in files[:args.calibration]], None))
    ev = calibration_data(meta, labelled_for(meta, [str(f) for f in files[args.calibration:]], None))
    base, _ = load_network(args.model)
    part_of = FAMILIES[type(base).__name__].session_part
    results = {}
    for v in args.variants.split(","):
        results[v] = score(recalibrate(base, part_of, cal, v, args.seed), ev)
        sys.stdout.write(f"{v}: {results[v]}\n")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
