"""Volumes of a mapping session, computed once and cached on disk.

The expensive part of a volume is the exact field on the coarse lattice (one spherical-head
evaluation per pulse, ~0.1 s); it depends on the pose and the head / coil / grid settings only,
not on the intensity or the input kind. :func:`session_fields` caches it per table in
``cache_dir`` (a ``.npy`` file named by a hash of the poses and those settings);
:func:`session_magnitudes` then gives |E| on the grid per pulse (float16 to halve the memory
of a session: 0.5 MB per 64³ volume). Tables that name NIfTI E-fields are resampled instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtdecode.tms.nifti import load_efield_nifti
from rtdecode.tms.session_table import MappingTable
from rtdecode.tms.volume import VolumeModel

logger = logging.getLogger(__name__)

__all__ = ["MinMax", "fields_key", "session_fields", "session_magnitudes"]


def fields_key(table: MappingTable, vm: VolumeModel) -> str:
    """Hash of what the lattice fields depend on: poses, grid, lattice, head and coil."""
    cfg = vm.cfg.model_dump(mode="json", exclude={"kind", "firing", "didt_per_mso", "cortex_mm"})
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode())
    h.update(np.ascontiguousarray(np.round(table.pose, 6)).tobytes())
    return h.hexdigest()[:16]


def session_fields(table: MappingTable, vm: VolumeModel, cache_dir: str | Path | None = None
                   ) -> np.ndarray:
    """Lattice field per A/s of every pulse, float32 (N, 3, *lattice), cached in ``cache_dir``."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"fields-{fields_key(table, vm)}.npy"
        if path.exists():
            out = np.load(path)
            if out.shape == (len(table), 3, *vm.cfg.lattice):
                return out
            logger.warning("ignoring %s: shape %s does not match the table", path, out.shape)
    out = np.stack([vm.lattice_field(table.coil_pose(i)).astype(np.float32)
                    for i in range(len(table))])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)
        logger.info("cached the lattice fields of %d pulses in %s", len(table), path)
    return out


def session_magnitudes(table: MappingTable, vm: VolumeModel, cache_dir: str | Path | None = None
                       ) -> np.ndarray:
    """|E| on the grid for every pulse, float16 (N, *shape), V/m.

    From the table's NIfTI files when it names them, else from the spherical-head model.
    """
    out = np.empty((len(table), *vm.shape), np.float16)
    if table.efield_files is not None:
        for i, f in enumerate(table.efield_files):
            out[i] = load_efield_nifti(f, vm.cfg)
        return out
    fields = session_fields(table, vm, cache_dir)
    for i in range(len(table)):
        out[i] = vm.magnitude(fields[i], float(table.intensity_mso[i]))
    return out


@dataclass(frozen=True)
class MinMax:
    """Min-max scaling to [0, 1] (seed 001): ``(x − lo) / (hi − lo)``, span floored at 1e-12.

    ``lo`` and ``hi`` are scalars (one scale over a whole data set, as for the volumes and
    codes) or per-column arrays (the muscles).
    """

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, per_column: bool) -> MinMax:
        """The range of ``x``: per column of a (N, k) array, or over all of it."""
        x = np.asarray(x, np.float64)
        if per_column:
            return cls(x.min(axis=0), x.max(axis=0))
        return cls(np.asarray(x.min()), np.asarray(x.max()))

    @property
    def span(self) -> np.ndarray:
        """``hi − lo``, floored at 1e-12."""
        return np.maximum(np.asarray(self.hi, np.float64) - self.lo, 1e-12)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Scaled values (same shape; float32 in, float32 out)."""
        dt = np.float32 if np.asarray(x).dtype in (np.float16, np.float32) else np.float64
        return (np.asarray(x, dt) - np.asarray(self.lo, dt)) / self.span.astype(dt)

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Values in the original units from scaled ones."""
        return np.asarray(z, np.float64) * self.span + self.lo
