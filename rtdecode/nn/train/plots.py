"""Figures of a training run: curves, held-out predictions (regression), confusion (classification)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtdecode.figures import confusion_figure, pyplot, save, traces_figure
from rtdecode.nn.train.results import AbRun, RunResult

logger = logging.getLogger(__name__)

__all__ = ["run_plots"]


def _ab_curves(result: RunResult, path: Path) -> None:
    plt = pyplot()
    names = list(result.curves)
    fig, axes = plt.subplots(2, len(names), figsize=(4.5 * len(names), 6), squeeze=False)
    for j, name in enumerate(names):
        h = result.curves[name]["amax"]
        axes[0, j].semilogy(np.asarray(h["loss"]) + 1e-12)
        axes[0, j].set_title(f"{name}: training loss (chosen Amax attempt)", fontsize=9)
        for k, v in h["r2"].items():
            axes[1, j].plot(v, label=k)
        axes[1, j].set_ylim(-0.5, 1.0)
        axes[1, j].set_xlabel("step")
        axes[1, j].set_ylabel("R²")
        axes[1, j].legend(fontsize=8)
    save(fig, path, dpi=90)


def _ab_predictions(result: RunResult, path: Path) -> None:
    data = result.data
    mask_b = result.set_masks["b"]
    i = next((i for i, m in enumerate(mask_b) if m.any()), 0)
    idx = np.flatnonzero(mask_b[i])[:2000]
    labels = [f"{n} [{u}]" for n, u in zip(data.output_names, data.output_units, strict=True)]
    traces_figure(idx / data.frame_rate_hz, data.segments[i].y[idx],
                  {name: p[i][idx] for name, p in result.segment_predictions.items()}, labels,
                  "set B frames: Amax models (chosen on A) vs truth", path)


def _loto_curves(result: RunResult, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, per_fold in result.curves.items():
        for j, h in enumerate(per_fold.values()):
            axes[0].plot(h["val_loss"], alpha=0.5, label=name if j == 0 else None)
            axes[1].plot(h["val_acc"], alpha=0.5)
    axes[0].set_title("validation loss per fold", fontsize=9)
    axes[1].set_title("validation accuracy per fold", fontsize=9)
    axes[0].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("epoch")
    save(fig, path, dpi=90)


def run_plots(result: RunResult, out: Path) -> list[str]:
    """Write the run's figures into ``out``; returns their file names."""
    run = result.run
    if isinstance(run, AbRun):
        _ab_curves(result, out / "curves.png")
        _ab_predictions(result, out / "predictions.png")
        return ["curves.png", "predictions.png"]
    written = []
    if result.curves:
        _loto_curves(result, out / "curves.png")
        written.append("curves.png")
    cms = {name: m.confusion for name, m in run.models.items()}
    if run.lda is not None:
        cms["LDA (TD features)"] = run.lda.confusion
    confusion_figure(cms, run.classes, out / "confusion.png")
    return [*written, "confusion.png"]
