"""Figures of the fusion experiments (matplotlib, Agg backend; imported only when plotting)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.figures import pyplot, save

logger = logging.getLogger(__name__)

__all__ = ["plot_fusion_monkey", "plot_fusion_sim"]

STYLE = {
    "true": {"color": "tab:red", "lw": 2.0, "label": "true"},
    "kalman": {"color": "0.55", "lw": 0.9, "label": "Kalman decoder"},
    "wiener": {"color": "0.35", "lw": 0.9, "ls": "--", "label": "Wiener decoder"},
    "population_vector": {"color": "0.75", "lw": 0.9, "label": "population vector"},
    "kf_fusion": {"color": "black", "lw": 1.4, "label": "KF fusion (seed 002)"},
    "kf_fusion_ar1": {"color": "tab:blue", "lw": 1.4, "label": "KF fusion, AR(1) errors"},
    "ann_fusion": {"color": "tab:brown", "lw": 1.4, "label": "ANN fusion"},
}


def plot_fusion_sim(traces: dict[str, dict[str, np.ndarray]], trials: list[dict[str, Any]], dt_s: float,
                    path: Path) -> Path:
    """Decoded velocity and path of the first test trajectory, and RMS errors over all trials.

    Parameters
    ----------
    traces : dict
        Per condition (``"good"``, ``"poor"``): ``{"true": (k, 2), method: (k, 2), ...}`` (cm/s).
    trials : list of dict
        :func:`~rtdecode.experiments.fusion_sim.run_trial` results (RMS per method).
    dt_s : float
        Bin width, s.
    path : Path
        Output ``.png``.
    """
    plt = pyplot()
    conds = list(traces)
    fig, axes = plt.subplots(len(conds), 3, figsize=(15, 4.2 * len(conds)), squeeze=False)
    shown = ["population_vector", "kalman", "wiener", "kf_fusion", "kf_fusion_ar1", "ann_fusion", "true"]
    for row, cond in enumerate(conds):
        tr = traces[cond]
        k = tr["true"].shape[0]
        t = np.arange(k) * dt_s
        ax = axes[row, 0]
        for name in shown:
            if name in tr:
                ax.plot(t, tr[name][:, 0], **STYLE[name])
        ax.set(xlabel="time, s", ylabel="vx, cm/s",
               title=f"{cond} decoders: test trajectory (first {k} bins)")
        ax = axes[row, 1]
        for name in shown:
            if name in tr:
                pos = np.cumsum(tr[name], axis=0) * dt_s
                ax.plot(pos[:, 0], pos[:, 1], **STYLE[name])
        ax.set(xlabel="x, cm", ylabel="y, cm", title="path (integrated velocity)", aspect="equal")
        ax = axes[row, 2]
        methods = [m for m in ("kalman", "wiener", "population_vector", "kf_fusion", "kf_fusion_adaptive",
                               "kf_fusion_ar1", "kf_fusion_ar1_adaptive", "ann_fusion")
                   if m in trials[0][cond]["rms"]]
        data = [[tri[cond]["rms"][m] for tri in trials] for m in methods]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(methods) + 1))
        ax.set_xticklabels([m.replace("_", "\n") for m in methods], fontsize=7)
        ax.set(ylabel="RMS error, cm/s", title=f"{cond}: RMS over {len(trials)} trials")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    return save(fig, path)


def plot_fusion_monkey(paths: list[dict[str, np.ndarray]], r2: dict[str, dict[str, float | None]],
                       path: Path) -> Path:
    """Hand paths of a few held-out trials and the R² of each method.

    Parameters
    ----------
    paths : list of dict
        One per trial: ``{"true": (n, 4), method: (n, 4) or (n, 2), ...}`` (px, py, vx, vy).
    r2 : dict
        Method → ``{"position": R², "velocity": R²}`` (None where a method has no position).
    path : Path
        Output ``.png``.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    ax = axes[0]
    for j, tr in enumerate(paths):
        for name in ("wiener", "kf_fusion", "ann_fusion", "true"):
            if name in tr and tr[name].shape[1] >= 2:
                style = dict(STYLE[name])
                if j:
                    style.pop("label", None)
                ax.plot(tr[name][:, 0], tr[name][:, 1], **style)
    ax.set(xlabel="x, mm", ylabel="y, mm", title="held-out reaches (one per direction)", aspect="equal")
    ax.legend(fontsize=7)
    ax = axes[1]
    names = list(r2)
    xs = np.arange(len(names))
    pos = [np.nan if r2[n]["position"] is None else r2[n]["position"] for n in names]
    vel = [r2[n]["velocity"] for n in names]
    ax.bar(xs - 0.2, pos, 0.4, label="position")
    ax.bar(xs + 0.2, vel, 0.4, label="velocity")
    ax.set_xticks(xs)
    ax.set_xticklabels([n.replace("_", "\n") for n in names], fontsize=7)
    ax.set(ylabel="R² (held-out trials)", ylim=(0, 1), title="decoding accuracy")
    ax.legend(fontsize=8)
    return save(fig, path)
