"""Figures shared by training, evaluation and the experiments (matplotlib, Agg backend).

Imported only when plotting: matplotlib is in the ``train`` / ``bench`` extras, not in the
runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["confusion_figure", "pyplot", "save", "series_figure", "traces_figure"]


def pyplot():  # noqa: ANN201
    """``matplotlib.pyplot`` on the Agg backend (a clear error when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:
        raise ConfigError("plotting needs matplotlib", "pip install matplotlib, or pass --no-plot") from exc
    return plt


def save(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Lay out, write (creating the folder) and close a figure; returns ``path``."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    logger.info("wrote %s", path)
    return path


def confusion_figure(cms: Mapping[str, np.ndarray], labels: Sequence[str], path: Path) -> Path:
    """Row-normalised confusion matrices side by side (one panel per model).

    Parameters
    ----------
    cms : dict of str → int (G, G)
        Counts (true class, predicted class) per model.
    labels : list of str
        Class names (G).
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cms), figsize=(3.6 * len(cms), 3.6), squeeze=False)
    for ax, (name, cm) in zip(axes[0], cms.items(), strict=True):
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for (a, b), v in np.ndenumerate(norm):
            ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0, 0].set_ylabel("true", fontsize=8)
    return save(fig, path, dpi=90)


def traces_figure(t: np.ndarray, truth: np.ndarray, preds: Mapping[str, np.ndarray], labels: Sequence[str],
                  title: str, path: Path) -> Path:
    """Each output over time: the truth and every model's estimate.

    Parameters
    ----------
    t : float (T,)
        Time, s.
    truth : float (T, K)
    preds : dict of str → float (T, K)
    labels : list of str
        One axis label per output (name and unit).
    """
    plt = pyplot()
    K = truth.shape[1]
    fig, axes = plt.subplots(K, 1, figsize=(10, 2.2 * K), squeeze=False, sharex=True)
    for k in range(K):
        ax = axes[k, 0]
        ax.plot(t, truth[:, k], "k.", ms=2, label="truth")
        for name, p in preds.items():
            ax.plot(t, p[:, k], ".", ms=2, label=name)
        ax.set_ylabel(labels[k], fontsize=8)
    axes[0, 0].set_title(title, fontsize=9)
    axes[0, 0].legend(fontsize=7, markerscale=4, ncol=4)
    axes[-1, 0].set_xlabel("time, s")
    return save(fig, path, dpi=90)


def series_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
                  title: str, path: Path) -> Path:
    """One line per name: ``series[name] = (x, y)``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, (x, y) in series.items():
        ax.plot(x, y, "o-", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path, dpi=90)
