"""The analytic spherical-head E-field and the figure-8 coil, against known properties."""

from __future__ import annotations

import numpy as np
import pytest

from rtdecode.errors import ConfigError
from rtdecode.tms.coil import CoilPose3D, Figure8Coil
from rtdecode.tms.efield import primary_efield, sphere_efield

RNG = np.random.default_rng(14)
DIPOLES = np.array([[0.01, 0.02, 0.095], [-0.02, 0.0, 0.096], [0.0, -0.03, 0.09]])
MOMENTS = np.array([[0.3, -0.2, 1.0], [0.5, 0.1, -0.4], [-0.2, 0.7, 0.1]])


def _inside(n: int, radius: float = 0.075) -> np.ndarray:
    d = RNG.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * RNG.uniform(0.01, radius, (n, 1))


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_field_is_proportional_to_didt() -> None:
    pts = _inside(20)
    e1 = sphere_efield(pts, DIPOLES, MOMENTS, 1e8)
    np.testing.assert_allclose(sphere_efield(pts, DIPOLES, MOMENTS, 2.5e8), 2.5 * e1, rtol=1e-12)
    np.testing.assert_allclose(sphere_efield(pts, DIPOLES, MOMENTS, -1e8), -e1, rtol=1e-12)
    assert np.abs(e1).max() > 1.0  # V/m: a real field, not zeros


def test_no_radial_component_and_zero_at_centre() -> None:
    surface = _inside(50, 0.075)
    surface /= np.linalg.norm(surface, axis=1, keepdims=True) / 0.08  # on a 8-cm sphere
    e = sphere_efield(surface, DIPOLES, MOMENTS, 1e8)
    radial = np.einsum("nc,nc->n", e, surface) / 0.08
    assert np.abs(radial).max() < 1e-9 * np.abs(e).max()
    assert np.abs(sphere_efield(np.zeros((1, 3)), DIPOLES, MOMENTS, 1e8)).max() == 0.0


def test_radial_dipole_induces_only_its_primary_field() -> None:
    """No surface charge builds up for a dipole pointing at the centre (a textbook result)."""
    pts = _inside(30)
    pos = np.array([[0.02, -0.01, 0.09]])
    mom = pos / np.linalg.norm(pos) * 3.0
    np.testing.assert_allclose(sphere_efield(pts, pos, mom, 1e8), primary_efield(pts, pos, mom, 1e8),
                               rtol=1e-9, atol=1e-9)


def _curl(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    J = np.zeros((3, 3))
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        J[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return np.array([J[2, 1] - J[1, 2], J[0, 2] - J[2, 0], J[1, 0] - J[0, 1]])


def test_secondary_field_is_curl_free() -> None:
    """E − E_primary comes from charges (a gradient field); E itself is not curl-free.

    This fixes the sign and the form of the solution: with any other sign or a wrong ∇F the
    difference keeps a curl of the size of E's own.
    """
    def total(y: np.ndarray) -> np.ndarray:
        return sphere_efield(y[None], DIPOLES, MOMENTS, 1e8)[0]

    def secondary(y: np.ndarray) -> np.ndarray:
        return total(y) - primary_efield(y[None], DIPOLES, MOMENTS, 1e8)[0]

    for x in _inside(6, 0.07):
        own = np.linalg.norm(_curl(total, x))
        assert own > 100.0  # V/m², Faraday: E has a curl
        assert np.linalg.norm(_curl(secondary, x)) < 1e-5 * own


def test_rotating_the_setup_rotates_the_field() -> None:
    pts = _inside(25)
    R = _rotation(3)
    e = sphere_efield(pts, DIPOLES, MOMENTS, 1e8)
    e_rot = sphere_efield(pts @ R.T, DIPOLES @ R.T, MOMENTS @ R.T, 1e8)
    np.testing.assert_allclose(e_rot, e @ R.T, rtol=1e-9, atol=1e-9)


def test_moving_the_sphere_moves_the_field() -> None:
    pts = _inside(10)
    c = np.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(sphere_efield(pts + c, DIPOLES + c, MOMENTS, 1e8, center=c),
                               sphere_efield(pts, DIPOLES, MOMENTS, 1e8), rtol=1e-9, atol=1e-9)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="closer to the sphere's centre"):
        sphere_efield(np.array([[0.0, 0.0, 0.2]]), DIPOLES, MOMENTS, 1e8)
    with pytest.raises(ConfigError, match="one moment per dipole"):
        sphere_efield(_inside(2), DIPOLES, MOMENTS[:2], 1e8)
    with pytest.raises(ConfigError, match="finite"):
        sphere_efield(np.array([[np.nan, 0, 0]]), DIPOLES, MOMENTS, 1e8)


def test_figure8_coil_induces_along_its_direction_under_its_centre() -> None:
    coil = Figure8Coil()
    for direction in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, -1.0, 0.0]):
        pose = CoilPose3D.make([0.0, 0.0, 0.091], [0.0, 0.0, 1.0], direction)
        pos, mom = coil.dipoles(pose)
        e = sphere_efield(np.array([[0.0, 0.0, 0.07]]), pos, mom, 1e8)[0]
        d = np.asarray(direction) / np.linalg.norm(direction)
        assert e @ d > 0.999 * np.linalg.norm(e)
        assert 50.0 < np.linalg.norm(e) < 400.0  # V/m at 2 cm depth for 100 A/µs: TMS scale
    # deeper is weaker, and the field decays away from under the centre
    pose = CoilPose3D.make([0.0, 0.0, 0.091], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    pos, mom = coil.dipoles(pose)
    depth = np.linalg.norm(sphere_efield(np.array([[0, 0, 0.075], [0, 0, 0.06], [0, 0, 0.045]]),
                                         pos, mom, 1e8), axis=1)
    assert depth[0] > depth[1] > depth[2]


def test_coil_discretisation_converges() -> None:
    pose = CoilPose3D.make([0.005, 0.0, 0.0905], [0.05, 0.0, 1.0], [1.0, 1.0, 0.0])
    pts = _inside(40, 0.072)
    pts[:, 2] = np.abs(pts[:, 2])
    fine = sphere_efield(pts, *Figure8Coil(n_radial=16, n_angular=48).dipoles(pose), 1e8)
    default = sphere_efield(pts, *Figure8Coil().dipoles(pose), 1e8)
    assert np.abs(default - fine).max() < 0.02 * np.abs(fine).max()
