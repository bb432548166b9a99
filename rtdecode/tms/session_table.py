"""A mapping session as a table: one row per pulse — coil pose, intensity and the MEP per muscle.

This is what neuronavigators and MEP tools export, and what ``rtdecode simulate tms --table``
writes. CSV columns (header names; order free, other columns ignored):

=====================  =================================================================
``pulse``              pulse number (int)
``x_mm y_mm z_mm``     coil centre, head frame, mm (the frame of ``volume.head_centre_mm``)
``nx ny nz``           coil normal, pointing away from the head (unit vector)
``dx dy dz``           induced-current direction under the coil centre (unit vector)
``intensity_mso``      intensity, % of maximum stimulator output; or ``intensity_rmt`` (% of
                       the resting motor threshold) with the threshold given as ``rmt_mso``
``<muscle>_uv``        MEP peak to peak per muscle, µV (every column ending in ``_uv``, in
                       table order, is a muscle)
``preactivated``       optional: muscles with background EMG at the pulse (``;``-separated,
                       or 0/1); such pulses are left out of training and scores
``efield_file``        optional: a NIfTI E-field per pulse (relative to the table), used
                       instead of the spherical-head model (:mod:`rtdecode.tms.nifti`)
=====================  =================================================================
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtdecode.errors import DataError
from rtdecode.tms.coil import CoilPose3D

logger = logging.getLogger(__name__)

__all__ = ["MappingTable", "read_table"]

_POSE = ("x_mm", "y_mm", "z_mm", "nx", "ny", "nz", "dx", "dy", "dz")


@dataclass
class MappingTable:
    """A mapping session's pulses.

    Attributes
    ----------
    pulse : int64 (N,)
    pose : float64 (N, 9)
        Coil centre (mm), normal, direction per pulse.
    intensity_mso : float64 (N,)
        % of maximum stimulator output.
    mep_uv : float64 (N, M)
        MEP peak to peak per muscle, µV.
    muscles : list of str
        The M muscle names.
    preactivated : bool (N,)
        Pulses that met background EMG.
    efield_files : list of str or None
        Absolute paths of per-pulse NIfTI E-fields, when the table names them.
    source : str
        Where the table came from.
    """

    pulse: np.ndarray
    pose: np.ndarray
    intensity_mso: np.ndarray
    mep_uv: np.ndarray
    muscles: list[str]
    preactivated: np.ndarray
    efield_files: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return int(self.pulse.shape[0])

    def coil_pose(self, i: int) -> CoilPose3D:
        """The pose of pulse ``i`` (m, unit vectors)."""
        p = self.pose[i]
        return CoilPose3D.make(p[:3] / 1e3, p[3:6], p[6:9])

    def subset(self, rows: np.ndarray) -> MappingTable:
        """The pulses at ``rows`` (indices or a boolean mask)."""
        files = None if self.efield_files is None else [self.efield_files[i] for i in
                                                        np.arange(len(self))[rows]]
        return MappingTable(self.pulse[rows], self.pose[rows], self.intensity_mso[rows],
                            self.mep_uv[rows], list(self.muscles), self.preactivated[rows], files,
                            self.source)

    def stimulus_features(self) -> np.ndarray:
        """Coil pose and intensity per pulse, float64 (N, 10): x, y, z (mm), n, d, %MSO."""
        return np.column_stack([self.pose, self.intensity_mso])


def _float(row: dict[str, str], name: str, where: str) -> float:
    try:
        v = float(row[name])
    except (KeyError, ValueError, TypeError):
        raise DataError(f"{where}: column {name!r} is missing or not a number ({row.get(name)!r})",
                        "fill every pose, intensity and MEP cell with a number") from None
    if not math.isfinite(v):
        raise DataError(f"{where}: column {name!r} is {v}", "give finite numbers")
    return v


def _preactivated(value: str | None) -> bool:
    v = (value or "").strip()
    return v not in ("", "0", "false", "False", "no")


def read_table(path: str | Path, rmt_mso: float | None = None) -> MappingTable:
    """Read a mapping session table (CSV, see the module docstring).

    Parameters
    ----------
    path : str or Path
    rmt_mso : float, optional
        Resting motor threshold, %MSO: converts ``intensity_rmt`` when the table has no
        ``intensity_mso`` column.

    Raises
    ------
    DataError
        Missing columns, non-numeric cells, no muscles, no rows, no usable intensity.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except OSError as err:
        raise DataError(f"cannot read mapping table {path}: {err}", "check the path") from None
    muscles = [h[:-3] for h in header if h.endswith("_uv")]
    missing = [c for c in ("pulse", *_POSE) if c not in header]
    if missing or not muscles or not rows:
        raise DataError(f"{path}: needs the columns pulse, {', '.join(_POSE)}, an intensity and "
                        f"<muscle>_uv; missing {missing or 'muscle columns' if not muscles else ''}"
                        f"{'' if rows else ' (no rows)'}",
                        "export one row per pulse (docs/m2m.md, 'Your own mapping session')")
    if "intensity_mso" in header:
        mso = [_float(r, "intensity_mso", f"{path} row {i + 2}") for i, r in enumerate(rows)]
    elif "intensity_rmt" in header and rmt_mso is not None:
        mso = [_float(r, "intensity_rmt", f"{path} row {i + 2}") * rmt_mso / 100.0
               for i, r in enumerate(rows)]
    else:
        raise DataError(f"{path}: no intensity_mso column (and no rmt_mso for intensity_rmt)",
                        "add intensity_mso, or pass the resting motor threshold (--rmt-mso)")
    pose = np.array([[_float(r, c, f"{path} row {i + 2}") for c in _POSE] for i, r in enumerate(rows)])
    mep = np.array([[_float(r, f"{m}_uv", f"{path} row {i + 2}") for m in muscles]
                    for i, r in enumerate(rows)])
    files = None
    if "efield_file" in header:
        files = [str((path.parent / r["efield_file"]).resolve()) for r in rows]
    table = MappingTable(np.array([int(_float(r, "pulse", str(path))) for r in rows]), pose,
                         np.asarray(mso, np.float64), mep, muscles,
                         np.array([_preactivated(r.get("preactivated")) for r in rows]), files,
                         str(path))
    if (table.mep_uv < 0).any():
        raise DataError(f"{path}: negative MEP amplitudes", "give peak-to-peak amplitudes (>= 0 µV)")
    logger.info("read %d pulses x %d muscles from %s (%d pre-activated)", len(table), len(muscles),
                path, int(table.preactivated.sum()))
    return table
