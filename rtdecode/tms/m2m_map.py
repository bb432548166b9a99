"""Predicted MEP maps: M2M-Net over a grid of candidate coil poses (the paper's use of the model).

Candidate poses sit on a square grid in the plane tangent to the head at ``centre_mm`` (offsets
``a`` along the trained induced-current direction, ``b`` across it), each moved onto the sphere
through the centre (radius ``|centre − head centre|``) with the coil tangential (normal
radial) and the trained orientation. :func:`predict_map` runs the model on their volumes in
batches; :func:`plot_maps` draws one panel per muscle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtdecode.tms.coil import CoilPose3D
from rtdecode.tms.m2m_model import M2mModel
from rtdecode.tms.subject import VirtualSubject

logger = logging.getLogger(__name__)

__all__ = ["MepMap", "candidate_poses", "plot_maps", "predict_map", "subject_map"]


@dataclass
class MepMap:
    """Predicted MEPs on a pose grid.

    Attributes
    ----------
    offsets_mm : float64 (n,)
        Grid offsets along each tangent axis, mm.
    centres_mm : float64 (n, n, 3)
        Coil centres, head frame, mm.
    mep_uv : float64 (n, n, k)
        Predicted MEP per muscle, µV (the model's primary head), at (a, b).
    muscles : list of str
    intensity_mso : float
    flags : int64 (n, n)
        Prediction flags (``DEGRADED`` where the pose is outside the trained range).
    direction : float64 (3,)
        Induced-current direction of every pose.
    head_centre_mm : float64 (3,)
    """

    offsets_mm: np.ndarray
    centres_mm: np.ndarray
    mep_uv: np.ndarray
    muscles: list[str]
    intensity_mso: float
    flags: np.ndarray
    direction: np.ndarray
    head_centre_mm: np.ndarray

    def pose(self, i: int, j: int) -> CoilPose3D:
        """The candidate pose at grid cell (i, j)."""
        c = self.centres_mm[i, j]
        return CoilPose3D.make(c / 1e3, c - self.head_centre_mm, self.direction)


def _trained(model: M2mModel) -> tuple[np.ndarray, np.ndarray]:
    """Mid-range coil centre (mm) and induced-current direction of the training pulses."""
    b = model.meta.bounds.input
    mid = 0.5 * (np.asarray(b.lo) + np.asarray(b.hi))
    return mid[:3], mid[6:9]


def candidate_poses(model: M2mModel, span_mm: float, step_mm: float,
                    centre_mm: np.ndarray | None = None) -> tuple[np.ndarray, list[list[CoilPose3D]]]:
    """Grid offsets (n,), mm, and the (n × n) candidate poses (see the module docstring)."""
    mid, direction = _trained(model)
    c = np.asarray(centre_mm if centre_mm is not None else mid, np.float64)
    head = np.asarray(model.meta.volume.head_centre_mm)
    radius = float(np.linalg.norm(c - head))
    normal = (c - head) / radius
    e1 = direction - (direction @ normal) * normal
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    offsets = np.arange(-span_mm / 2, span_mm / 2 + 1e-9, step_mm)
    poses = []
    for a in offsets:
        row = []
        for b in offsets:
            p = c + a * e1 + b * e2 - head
            n = p / np.linalg.norm(p)
            row.append(CoilPose3D.make((head + radius * n) / 1e3, n, direction))
        poses.append(row)
    return offsets, poses


def predict_map(model: M2mModel, span_mm: float = 30.0, step_mm: float = 2.0,
                intensity_mso: float | None = None, centre_mm: np.ndarray | None = None) -> MepMap:
    """Predicted MEPs (primary head) over the candidate grid at one intensity (default: mid-range)."""
    b = model.meta.bounds.input
    mso = float(intensity_mso if intensity_mso is not None else 0.5 * (b.lo[9] + b.hi[9]))
    offsets, poses = candidate_poses(model, span_mm, step_mm, centre_mm)
    n, k = len(offsets), len(model.muscles)
    out, flags = np.zeros((n, n, k)), np.zeros((n, n), np.int64)
    centres = np.zeros((n, n, 3))
    for i in range(n):
        for j in range(n):
            pred = model.predict(poses[i][j], mso)
            out[i, j], flags[i, j] = pred.primary_uv, pred.flags
            centres[i, j] = poses[i][j].center * 1e3
    logger.info("predicted %d x %d poses at %.1f %%MSO", n, n, mso)
    return MepMap(offsets, centres, out, model.muscles, mso, flags, _trained(model)[1],
                  np.asarray(model.meta.volume.head_centre_mm, np.float64))


def subject_map(subject: VirtualSubject, m: MepMap) -> np.ndarray:
    """A virtual subject's noise-free MEPs (µV) at a map's poses, float64 (n, n, k)."""
    n = len(m.offsets_mm)
    out = np.zeros((n, n, len(m.muscles)))
    for i in range(n):
        for j in range(n):
            out[i, j] = subject.expected_mep(subject.drive(m.pose(i, j), m.intensity_mso))
    return out


def plot_maps(m: MepMap, path: str | Path, title: str = "", truth: np.ndarray | None = None) -> Path:
    """One panel per muscle (predicted MEP over the grid); with ``truth`` (n, n, k) a second row set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(m.muscles)
    rows = [("predicted", m.mep_uv)] + ([("simulator, noise-free", truth)] if truth is not None else [])
    cols = 5
    nrow = -(-k // cols)
    fig, axes = plt.subplots(nrow * len(rows), cols, figsize=(2.4 * cols, 2.3 * nrow * len(rows)),
                             squeeze=False)
    ext = [m.offsets_mm[0], m.offsets_mm[-1], m.offsets_mm[0], m.offsets_mm[-1]]
    for r, (label, data) in enumerate(rows):
        for i, name in enumerate(m.muscles):
            ax = axes[r * nrow + i // cols][i % cols]
            vmax = max(float(m.mep_uv[..., i].max()), float(data[..., i].max()), 1.0)
            im = ax.imshow(data[..., i].T, origin="lower", extent=ext, vmin=0, vmax=vmax, cmap="viridis")
            ax.set_title(f"{name} ({label.split(',')[0]})", fontsize=8)
            ax.tick_params(labelsize=6)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        for i in range(k, nrow * cols):
            axes[r * nrow + i // cols][i % cols].axis("off")
    fig.suptitle(title or f"Predicted MEP (µV) at {m.intensity_mso:.1f} %MSO; axes: offset along / "
                 "across the induced current, mm", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
