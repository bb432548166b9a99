r"""Induced electric field of magnetic dipoles in a spherical conductor (analytic, quasi-static).

A TMS coil is modelled as a set of magnetic dipoles ``m_j`` (A·m² per ampere of coil
current) at positions ``r_j`` outside a spherically symmetric conductor (a spherical head
with any radial conductivity profile). The total field inside, primary (−∂A/∂t) plus the
field of the surface charges, does not depend on the conductivity and is, for a coil current
changing at ``dI/dt`` (Heller & van Hulsteyn 1992, by reciprocity from Sarvas 1987):

.. math::

    \mathbf E(\mathbf r) = -\frac{\mu_0}{4\pi}\frac{dI}{dt}\sum_j \frac{1}{F^2}
        \Big(F\,\mathbf r\times\mathbf m_j - (\mathbf m_j\cdot\nabla F)\,\mathbf r\times\mathbf r_j\Big)

with, for each dipole, ``a = r_j − r``, ``a = |a|``, ``ρ = |r_j|``:

.. math::

    F = a\,(\rho a + \rho^2 - \mathbf r\cdot\mathbf r_j),\qquad
    \nabla F = \Big(\frac{a^2}{\rho} + \frac{\mathbf a\cdot\mathbf r_j}{a} + 2a + 2\rho\Big)\mathbf r_j
              - \Big(a + 2\rho + \frac{\mathbf a\cdot\mathbf r_j}{a}\Big)\mathbf r

(the gradient is taken with respect to the dipole position ``r_j``). All positions are
relative to the sphere's centre. Properties the tests check: ``E`` is proportional to
``dI/dt``; it has no radial component (``E · r = 0`` everywhere, so none at the surface);
it is 0 at the centre; a radial dipole induces only its primary field; ``E`` minus the
primary field is curl-free (it comes from charges); rotating the coil rotates the field.

Units: positions m, moments A·m²/A, ``dI/dt`` A/s → E in V/m.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["MU0", "primary_efield", "sphere_efield"]

#: Vacuum permeability, T·m/A.
MU0 = 4e-7 * np.pi
#: Field points per block (bounds the temporary (block, n_dipoles) arrays).
_BLOCK = 2048


def _as_points(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != 3 or not np.isfinite(a).all():
        raise ConfigError(f"{name} must be finite float (n, 3) coordinates, got shape {a.shape}",
                          "pass positions / moments as rows of x, y, z")
    return a


def _check(points: np.ndarray, dip_pos: np.ndarray, dip_moment: np.ndarray,
           center: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _as_points(points, "points") - center
    r0 = _as_points(dip_pos, "dipole positions") - center
    m = _as_points(dip_moment, "dipole moments")
    if r0.shape != m.shape:
        raise ConfigError(f"{r0.shape[0]} dipole positions for {m.shape[0]} moments",
                          "give one moment per dipole position")
    return p, r0, m


def sphere_efield(points: np.ndarray, dipole_pos: np.ndarray, dipole_moment: np.ndarray,
                  didt: float, center: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0)
                  ) -> np.ndarray:
    """Total E-field at points inside a spherical conductor, from dipoles outside it.

    Parameters
    ----------
    points : float (n, 3), m
        Field points, inside the sphere (closer to its centre than every dipole).
    dipole_pos : float (k, 3), m
        Dipole positions, outside the sphere.
    dipole_moment : float (k, 3), A·m² per A
        Dipole moments per ampere of coil current.
    didt : float, A/s
        Rate of change of the coil current.
    center : float (3,), m
        Centre of the sphere.

    Returns
    -------
    float64 (n, 3), V/m
        The field at each point.

    Raises
    ------
    ConfigError
        Malformed arrays, or a point not closer to the centre than every dipole.
    """
    c = np.asarray(center, dtype=np.float64).reshape(3)
    p, r0, m = _check(points, dipole_pos, dipole_moment, c)
    rho = np.linalg.norm(r0, axis=1)
    if p.shape[0] and np.linalg.norm(p, axis=1).max() >= rho.min():
        raise ConfigError("a field point is not closer to the sphere's centre than every dipole",
                          "evaluate inside the head, with the coil outside it")
    out = np.empty_like(p)
    for s in range(0, p.shape[0], _BLOCK):
        out[s:s + _BLOCK] = _block(p[s:s + _BLOCK], r0, m, rho)
    return out * (-MU0 / (4 * np.pi) * float(didt))


def _block(p: np.ndarray, r0: np.ndarray, m: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Sum over dipoles of (F r×m − (m·∇F) r×r0) / F² for a block of points (n, 3)."""
    a_vec = r0[None, :, :] - p[:, None, :]  # (n, k, 3)
    a = np.linalg.norm(a_vec, axis=2)  # (n, k)
    r_dot_r0 = p @ r0.T  # (n, k)
    a_dot_r0 = np.einsum("nkc,kc->nk", a_vec, r0)
    F = a * (rho * a + rho**2 - r_dot_r0)
    c_r0 = a**2 / rho + a_dot_r0 / a + 2 * a + 2 * rho  # coefficient of r0 in ∇F
    c_r = a + 2 * rho + a_dot_r0 / a  # coefficient of -r in ∇F
    m_grad = c_r0 * np.einsum("kc,kc->k", m, r0)[None, :] - c_r * (p @ m.T)  # m·∇F (n, k)
    w1 = 1.0 / F  # F r×m / F²
    w2 = m_grad / F**2  # (m·∇F) r×r0 / F²
    r_x_m = w1 @ m  # Σ_k w1 m_k, then r × (.)
    r_x_r0 = w2 @ r0
    return np.cross(p, r_x_m) - np.cross(p, r_x_r0)


def primary_efield(points: np.ndarray, dipole_pos: np.ndarray, dipole_moment: np.ndarray,
                   didt: float) -> np.ndarray:
    """The primary field ``−∂A/∂t`` of the dipoles in free space (no conductor), V/m.

    ``A(x) = μ0/(4π) Σ m_j × (x − r_j) / |x − r_j|³`` per ampere; parameters as
    :func:`sphere_efield`.
    """
    x = _as_points(points, "points")
    r0 = _as_points(dipole_pos, "dipole positions")
    m = _as_points(dipole_moment, "dipole moments")
    d = x[:, None, :] - r0[None, :, :]
    inv3 = np.linalg.norm(d, axis=2) ** -3
    A = np.cross(m[None, :, :], d) * inv3[:, :, None]
    return -MU0 / (4 * np.pi) * float(didt) * A.sum(axis=1)
