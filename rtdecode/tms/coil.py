"""A figure-of-eight TMS coil as a set of magnetic dipoles, placed by a pose.

Each wing is a flat spiral of ``n_turns`` turns between ``r_inner`` and ``r_outer``. A
spiral's magnetic moment is spread over its area with a density equal to the number of turns
that enclose each point (``n_turns`` inside ``r_inner``, falling linearly to 0 at
``r_outer``); the coil is that density sampled on a polar grid per wing, each sample one
dipole ``m = n(ρ) dA n̂``. The wings touch at the coil centre and carry opposite currents, so
the induced field under the centre is strongest and points along the pose's ``direction``.

The default geometry is close to a 70-mm figure-of-eight coil (two 9-turn wings, 27–44 mm
radii, as in the commonly used Magstim 70 mm model).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["CoilPose3D", "Figure8Coil"]


def _unit(v: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n == 0.0:
        raise ConfigError(f"coil {name} {v.tolist()} is not a usable direction",
                          "give a finite, non-zero 3-vector")
    return v / n


@dataclass(frozen=True)
class CoilPose3D:
    """Where the coil is: centre (m), outward normal and induced-current direction (unit vectors).

    ``direction`` is made orthogonal to ``normal`` (its component along the normal is removed).
    """

    center: np.ndarray
    normal: np.ndarray
    direction: np.ndarray

    @classmethod
    def make(cls, center: np.ndarray, normal: np.ndarray, direction: np.ndarray) -> CoilPose3D:
        """Checked, normalised pose."""
        n = _unit(normal, "normal")
        d = np.asarray(direction, dtype=np.float64).reshape(3)
        d = _unit(d - (d @ n) * n, "direction (orthogonal to the normal)")
        return cls(np.asarray(center, dtype=np.float64).reshape(3), n, d)

    def frame(self) -> np.ndarray:
        """Rotation (3, 3) whose columns are the coil's x (direction), y and z (normal) axes."""
        return np.column_stack([self.direction, np.cross(self.normal, self.direction), self.normal])


class Figure8Coil:
    """A figure-of-eight coil as magnetic dipoles.

    Parameters
    ----------
    n_turns : int
        Turns per wing.
    r_inner, r_outer : float
        Inner and outer winding radii, m.
    n_radial, n_angular : int
        Polar grid per wing (dipoles per wing = n_radial * n_angular).
    """

    def __init__(self, n_turns: int = 9, r_inner: float = 0.027, r_outer: float = 0.044,
                 n_radial: int = 5, n_angular: int = 12) -> None:
        if not 0 < r_inner < r_outer or n_turns < 1 or n_radial < 1 or n_angular < 3:
            raise ConfigError(f"coil geometry: need 0 < r_inner < r_outer, n_turns >= 1 and a grid "
                              f"of at least 1 x 3 (got {r_inner}, {r_outer}, {n_turns}, "
                              f"{n_radial} x {n_angular})", "fix the coil parameters")
        edges = np.linspace(0.0, r_outer, n_radial + 1)
        rho = 0.5 * (edges[1:] + edges[:-1])
        ring_area = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2) / n_angular
        turns = n_turns * np.clip((r_outer - rho) / (r_outer - r_inner), 0.0, 1.0)
        phi = (np.arange(n_angular) + 0.5) * 2 * np.pi / n_angular
        rr, pp = np.meshgrid(rho, phi, indexing="ij")
        wing = np.column_stack([rr.ravel() * np.cos(pp.ravel()), rr.ravel() * np.sin(pp.ravel())])
        strength = np.repeat(turns * ring_area, n_angular)
        # wings at ±r_outer along y with moments ∓z: the field induced under the centre (below
        # the coil, against the normal z) then points along +x, the pose's direction
        pos, mom = [], []
        for side in (1.0, -1.0):
            xy = wing + np.array([0.0, side * r_outer])
            pos.append(np.column_stack([xy, np.zeros(len(xy))]))
            mom.append(np.column_stack([np.zeros((len(xy), 2)), -side * strength]))
        self.local_positions = np.vstack(pos)
        self.local_moments = np.vstack(mom)
        self.n_turns = n_turns

    @property
    def n_dipoles(self) -> int:
        """Number of dipoles."""
        return int(self.local_positions.shape[0])

    def dipoles(self, pose: CoilPose3D) -> tuple[np.ndarray, np.ndarray]:
        """Dipole positions (k, 3), m, and moments (k, 3), A·m² per A, for a coil pose."""
        R = pose.frame()
        return self.local_positions @ R.T + pose.center, self.local_moments @ R.T
