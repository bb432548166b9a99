"""Stimulus → volume: the E-field of a coil pose on a 64³ grid over the motor cortex (seed 001).

M2M-Net's input is a 3-D image of the stimulus inside the brain: the magnitude of the induced
E-field (V/m), or the expected neural firing, a sigmoid of it (0..1). Here the field comes
from the analytic spherical-head model of :mod:`rtdecode.tms.efield` (the subject's own physics
in the simulator), or from E-fields computed elsewhere (:mod:`rtdecode.tms.nifti`).

::

    pose, %MSO ──► coil dipoles ──► sphere_efield on a coarse lattice (L³, per A/s)   [cached per pose]
                                          │ × dI/dt = didt_per_mso · %MSO
                                          ▼
                     separable trilinear interpolation to the grid (64³), |E|, cortex mask
                                          │
                         kind "efield": |E| (V/m)   kind "firing": σ((|E| − E50) / slope)

The grid is a box of ``shape`` voxels, ``extent_mm`` wide, centred on ``centre_mm`` (head frame,
mm); voxel centres sit at ``centre − extent/2 + (i + ½)·extent/shape``. Voxels outside the
cortical shell ``cortex_mm`` (radii from ``head_centre_mm``) are 0. The field varies over
centimetres (the coil is ≥ 15 mm from the cortex), so it is evaluated exactly on a coarse
lattice spanning the voxel centres (default 16 × 16 × 8) and interpolated; the test suite
bounds the interpolation error against the exact field on the grid.

The default head and coil are the virtual subject's (:mod:`rtdecode.tms.subject`), so a
simulator session's volumes carry exactly the physics its MEPs came from.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rtdecode.errors import ConfigError
from rtdecode.tms.coil import CoilPose3D, Figure8Coil
from rtdecode.tms.efield import sphere_efield
from rtdecode.tms.subject import CORTEX_M, DIDT_MAX

logger = logging.getLogger(__name__)

__all__ = ["CoilGeometry", "FiringConfig", "VolumeConfig", "VolumeModel", "firing", "pose_key"]

Vec3 = tuple[float, float, float]
Int3 = tuple[int, int, int]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FiringConfig(_Strict):
    """The E-field → neural firing transform: ``σ((|E| − e50) / slope)``."""

    e50_v_m: float = Field(100.0, gt=0, description="field of half-maximal firing, V/m")
    slope_v_m: float = Field(12.0, gt=0, description="sigmoid slope, V/m")


class CoilGeometry(_Strict):
    """A figure-of-eight coil as dipoles (:class:`rtdecode.tms.coil.Figure8Coil`)."""

    n_turns: int = Field(9, ge=1)
    r_inner_mm: float = Field(27.0, gt=0)
    r_outer_mm: float = Field(44.0, gt=0)
    n_radial: int = Field(5, ge=1)
    n_angular: int = Field(12, ge=3)

    def build(self) -> Figure8Coil:
        """The coil."""
        return Figure8Coil(self.n_turns, self.r_inner_mm / 1e3, self.r_outer_mm / 1e3,
                           self.n_radial, self.n_angular)


class VolumeConfig(_Strict):
    """Where the volume is, what it holds and the physics that fills it (see the module docstring)."""

    kind: Literal["efield", "firing"] = Field(
        "firing", description="efield: |E| in V/m; firing: the sigmoid of |E| (0..1)")
    shape: Int3 = Field((64, 64, 64), description="voxels per axis")
    centre_mm: Vec3 = Field((0.0, 0.0, 60.0), description="centre of the grid box, head frame, mm")
    extent_mm: Vec3 = Field((64.0, 64.0, 32.0), description="size of the grid box, mm")
    head_centre_mm: Vec3 = Field((0.0, 0.0, 0.0), description="centre of the spherical head, mm")
    cortex_mm: tuple[float, float] = Field(
        (CORTEX_M * 1e3 - 8.0, CORTEX_M * 1e3 + 2.0),
        description="radii (from head_centre_mm) of the cortical shell; voxels outside are 0")
    lattice: Int3 = Field((16, 16, 8), description="coarse lattice where the field is evaluated "
                          "exactly (then interpolated to the grid)")
    didt_per_mso: float = Field(DIDT_MAX / 100.0, gt=0,
                                description="coil current slope per %% of maximum output, A/s")
    coil: CoilGeometry = Field(default_factory=CoilGeometry)  # type: ignore[arg-type]
    firing: FiringConfig = Field(default_factory=FiringConfig)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _check(self) -> VolumeConfig:
        if min(self.shape) < 2 or min(self.lattice) < 2:
            raise ValueError(f"volume.shape {list(self.shape)} and volume.lattice "
                             f"{list(self.lattice)} need at least 2 points per axis")
        if any(e <= 0 for e in self.extent_mm):
            raise ValueError(f"volume.extent_mm {list(self.extent_mm)} must be positive")
        if not 0 <= self.cortex_mm[0] < self.cortex_mm[1]:
            raise ValueError(f"volume.cortex_mm {list(self.cortex_mm)} must be [inner, outer] radii")
        if self.coil.r_inner_mm >= self.coil.r_outer_mm:
            raise ValueError("volume.coil.r_inner_mm must be below r_outer_mm")
        return self

    def axes_mm(self, n: Int3 | None = None) -> list[np.ndarray]:
        """Voxel-centre coordinates per axis (head frame, mm) for ``n`` points per axis.

        With ``n`` (the lattice), the points span the first to the last voxel centre.
        """
        out = []
        for c, e, s, k in zip(self.centre_mm, self.extent_mm, self.shape, n or self.shape,
                              strict=True):
            first, last = c - e / 2 + 0.5 * e / s, c + e / 2 - 0.5 * e / s
            out.append(np.linspace(first, last, k))
        return out


def _interp_matrix(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Linear interpolation weights (len(fine), len(coarse)) from coarse to fine points."""
    W = np.zeros((len(fine), len(coarse)))
    j = np.clip(np.searchsorted(coarse, fine, side="right") - 1, 0, len(coarse) - 2)
    w = (fine - coarse[j]) / (coarse[j + 1] - coarse[j])
    W[np.arange(len(fine)), j] = 1.0 - w
    W[np.arange(len(fine)), j + 1] = w
    return W


def pose_key(pose: CoilPose3D) -> tuple[float, ...]:
    """Cache key of a pose: centre to 1 µm, unit vectors to 1e-6."""
    return tuple(np.concatenate([np.round(pose.center * 1e6), np.round(pose.normal * 1e6),
                                 np.round(pose.direction * 1e6)]).tolist())


class VolumeModel:
    """Computes volumes for coil poses (see the module docstring).

    Parameters
    ----------
    cfg : VolumeConfig
    cache_size : int
        Lattice fields kept per pose (least recently used dropped; 0 disables the cache).
    """

    def __init__(self, cfg: VolumeConfig, cache_size: int = 256) -> None:
        self.cfg = cfg
        self.coil = cfg.coil.build()
        fine, coarse = cfg.axes_mm(), cfg.axes_mm(cfg.lattice)
        self._W = [_interp_matrix(f, c).astype(np.float32) for f, c in zip(fine, coarse, strict=True)]
        L = np.meshgrid(*coarse, indexing="ij")
        self.lattice_points = np.stack([a.ravel() for a in L], axis=1) / 1e3  # (P, 3), m
        G = np.meshgrid(*fine, indexing="ij")
        h = np.asarray(cfg.head_centre_mm)
        r = np.sqrt(sum((g - c) ** 2 for g, c in zip(G, h, strict=True)))
        self.mask = ((r >= cfg.cortex_mm[0]) & (r <= cfg.cortex_mm[1])).astype(np.float32)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[float, ...], np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0
        if not self.mask.any():
            raise ConfigError("the volume grid does not intersect the cortical shell",
                              "check volume.centre_mm / extent_mm against cortex_mm")

    def clear_cache(self) -> None:
        """Forget every cached lattice field."""
        self._cache.clear()

    @property
    def shape(self) -> Int3:
        """Voxels per axis."""
        return self.cfg.shape

    def lattice_field(self, pose: CoilPose3D) -> np.ndarray:
        """E-field per A/s at the lattice points, float64 (3, *lattice), V/m per (A/s) (cached)."""
        key = pose_key(pose)
        hit = self._cache.get(key)
        if hit is not None:
            self.hits += 1
            self._cache.move_to_end(key)
            return hit
        self.misses += 1
        pos, mom = self.coil.dipoles(pose)
        E = sphere_efield(self.lattice_points, pos, mom, 1.0, np.asarray(self.cfg.head_centre_mm) / 1e3)
        field = E.T.reshape(3, *self.cfg.lattice)
        if self.cache_size:
            self._cache[key] = field
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return field

    def magnitude(self, field: np.ndarray, intensity_mso: float) -> np.ndarray:
        """|E| on the grid, float32 (*shape), V/m, from a lattice field per A/s (3, *lattice)."""
        if not (np.isfinite(intensity_mso) and 0.0 <= intensity_mso <= 100.0):
            raise ConfigError(f"intensity {intensity_mso} %MSO outside 0..100",
                              "give the stimulator output in % of its maximum")
        Wx, Wy, Wz = self._W
        f = np.asarray(field, np.float32) * np.float32(self.cfg.didt_per_mso * intensity_mso)
        c, lx, ly, lz = f.shape
        g = (Wx @ f.transpose(1, 0, 2, 3).reshape(lx, -1)).reshape(-1, c, ly, lz)  # (X, 3, Ly, Lz)
        g = (Wy @ g) @ Wz.T  # (X, 3, Y, Z)
        mag = np.sqrt(np.einsum("icjk,icjk->ijk", g, g))
        return mag * self.mask

    def transform(self, magnitude: np.ndarray) -> np.ndarray:
        """The configured input kind from |E| volumes (..., *shape): |E| itself, or the firing."""
        return magnitude if self.cfg.kind == "efield" else firing(magnitude, self.cfg.firing)

    def volume(self, pose: CoilPose3D, intensity_mso: float) -> np.ndarray:
        """The model input for one pulse, float32 (*shape)."""
        return self.transform(self.magnitude(self.lattice_field(pose), intensity_mso))


def firing(magnitude: np.ndarray, cfg: FiringConfig) -> np.ndarray:
    """Expected firing (0..1) for |E| (V/m): ``σ((|E| − e50) / slope)``, 0 where |E| = 0 (outside
    the brain), float32 of the input's shape."""
    e = np.asarray(magnitude, np.float32)
    z = (e - np.float32(cfg.e50_v_m)) / np.float32(cfg.slope_v_m)
    return np.where(e > 0, 0.5 * (1.0 + np.tanh(0.5 * z)), 0.0).astype(np.float32)
