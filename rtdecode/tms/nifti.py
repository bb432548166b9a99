"""E-fields computed elsewhere (e.g. SimNIBS) as NIfTI images → the model's volume grid.

SimNIBS writes the field of a simulation on the subject's MRI grid as NIfTI: the magnitude
(``*_magnE.nii.gz``, one value per voxel, V/m) or the vector field (``*_E.nii.gz``, three
values per voxel). Either is resampled (trilinear, 0 outside the image) at the voxel centres
of :class:`rtdecode.tms.volume.VolumeConfig`, whose ``centre_mm`` is then in the image's world
frame (scanner / subject space, mm). The cortical-shell mask of the spherical model is not
applied: the field is kept wherever the image has it (SimNIBS' own masks are 0 elsewhere).

Needs ``nibabel`` (``pip install 'rtdecode[nifti]'``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from rtdecode.errors import ConfigError, DataError
from rtdecode.tms.volume import VolumeConfig

logger = logging.getLogger(__name__)

__all__ = ["grid_world_points", "load_efield_nifti"]


def grid_world_points(cfg: VolumeConfig) -> np.ndarray:
    """Voxel centres of the volume grid, float64 (X, Y, Z, 3), world frame, mm."""
    axes = cfg.axes_mm()
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def load_efield_nifti(path: str | Path, cfg: VolumeConfig) -> np.ndarray:
    """|E| (V/m) of a NIfTI E-field on the volume grid, float32 (*cfg.shape).

    Parameters
    ----------
    path : str or Path
        A 3-D magnitude image or a 4-D/5-D image with 3 vector components in its last axis.
    cfg : VolumeConfig
        The grid (its ``centre_mm`` in the image's world frame).

    Raises
    ------
    ConfigError
        nibabel is not installed.
    DataError
        An unreadable file, an unexpected shape, non-finite values, or a grid that does not
        overlap the image.
    """
    try:
        import nibabel as nib
    except ImportError:
        raise ConfigError("reading NIfTI E-fields needs nibabel",
                          "pip install 'rtdecode[nifti]'") from None
    try:
        img: Any = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float64)
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as err:
        raise DataError(f"cannot read the E-field image {path}: {err}",
                        "give a NIfTI file (.nii or .nii.gz) written by SimNIBS or similar") from None
    data = np.squeeze(data)
    if data.ndim == 4 and data.shape[-1] == 3:
        data = np.linalg.norm(data, axis=-1)
    if data.ndim != 3:
        raise DataError(f"{path}: image of shape {data.shape}; expected a 3-D magnitude or a "
                        "3-D field of 3-vectors", "export magnE or E from the simulation")
    data = np.where(np.isfinite(data), data, 0.0)
    world = grid_world_points(cfg).reshape(-1, 3)
    inv = np.linalg.inv(img.affine)
    ijk = world @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((ijk > -0.5) & (ijk < np.asarray(data.shape) - 0.5), axis=1)
    if not inside.any():
        raise DataError(f"{path}: the volume grid (centre {list(cfg.centre_mm)} mm) lies outside "
                        "the image", "set volume.centre_mm in the image's world frame (mm)")
    out = ndimage.map_coordinates(data, ijk.T, order=1, mode="constant", cval=0.0)
    return out.reshape(cfg.shape).astype(np.float32)
