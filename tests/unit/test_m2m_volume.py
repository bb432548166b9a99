"""Stimulus → volume (rtdecode.tms.volume, nifti): the grid against the exact spherical-head field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.errors import ConfigError, DataError
from rtdecode.tms.efield import sphere_efield
from rtdecode.tms.subject import VirtualSubject
from rtdecode.tms.volume import FiringConfig, VolumeConfig, VolumeModel, firing

SMALL = VolumeConfig(shape=(32, 32, 32), lattice=(12, 12, 6))


@pytest.fixture(scope="module")
def subject() -> VirtualSubject:
    return VirtualSubject(0)


def _exact(vm: VolumeModel, subject: VirtualSubject, pose, mso: float, n: int = 300) -> tuple:
    idx = np.argwhere(vm.mask > 0)
    idx = idx[np.random.default_rng(1).choice(len(idx), n, replace=False)]
    axes = vm.cfg.axes_mm()
    pts = np.stack([axes[k][idx[:, k]] for k in range(3)], axis=1) / 1e3
    return idx, np.linalg.norm(subject.efield(pose, mso, pts), axis=1)


@pytest.mark.parametrize("uv", [(0.0, 0.0), (9.0, -6.0)])
def test_volume_matches_the_subjects_exact_field(subject: VirtualSubject, uv: tuple) -> None:
    """The default volume is the simulator's own physics: interpolation error < 1 % of max |E|."""
    vm = VolumeModel(VolumeConfig(kind="efield"))
    pose = subject.pose_at(*uv)
    vol = vm.volume(pose, 50.0)
    idx, exact = _exact(vm, subject, pose, 50.0)
    got = vol[idx[:, 0], idx[:, 1], idx[:, 2]]
    assert exact.max() > 50.0  # a real field (V/m)
    assert np.abs(got - exact).max() < 0.01 * exact.max()
    assert vol.dtype == np.float32 and vol.shape == (64, 64, 64)
    assert (vol[vm.mask == 0] == 0).all() and (vol[vm.mask > 0] > 0).all()


def test_field_scales_with_intensity_and_the_cache_hits(subject: VirtualSubject) -> None:
    vm = VolumeModel(SMALL)
    pose = subject.pose_at(3.0, 2.0)
    a = vm.magnitude(vm.lattice_field(pose), 40.0)
    b = vm.magnitude(vm.lattice_field(pose), 60.0)
    np.testing.assert_allclose(b, 1.5 * a, rtol=1e-5, atol=1e-6)
    assert (vm.hits, vm.misses) == (1, 1)
    moved = vm.magnitude(vm.lattice_field(subject.pose_at(10.0, 2.0)), 40.0)
    assert vm.misses == 2 and np.abs(moved - a).max() > 0.1 * a.max()


def test_firing_is_a_sigmoid_of_the_field_and_zero_outside_the_brain() -> None:
    cfg = FiringConfig(e50_v_m=100.0, slope_v_m=10.0)
    e = np.array([0.0, 50.0, 100.0, 150.0], np.float32)
    f = firing(e, cfg)
    np.testing.assert_allclose(f, [0.0, 1 / (1 + np.exp(5.0)), 0.5, 1 / (1 + np.exp(-5.0))], rtol=1e-5)
    vm = VolumeModel(SMALL.model_copy(update={"kind": "firing"}))
    v = vm.transform(np.full(SMALL.shape, 120.0, np.float32) * vm.mask)
    assert v.max() < 1.0 and (v[vm.mask == 0] == 0).all()


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="cortex_mm"):
        VolumeConfig(cortex_mm=(72.0, 60.0))
    with pytest.raises(ConfigError, match="cortical shell"):
        VolumeModel(VolumeConfig(centre_mm=(0.0, 0.0, -200.0)))
    vm = VolumeModel(SMALL)
    with pytest.raises(ConfigError, match="%MSO"):
        vm.magnitude(vm.lattice_field(VirtualSubject(0).pose_at(0, 0)), 120.0)


def test_nifti_magnitude_and_vector_images_land_on_the_grid(subject: VirtualSubject, tmp_path: Path) -> None:
    """A SimNIBS-like image of the exact field (1-mm voxels, its own affine) → the same volume."""
    nib = pytest.importorskip("nibabel")
    from rtdecode.tms.nifti import load_efield_nifti

    cfg = SMALL.model_copy(update={"kind": "efield"})
    vm = VolumeModel(cfg)
    pose = subject.pose_at(4.0, -2.0)
    # the image: 1-mm voxels over the grid box and a margin, origin and axes of its own
    ax = [np.arange(c - e / 2 - 3, c + e / 2 + 3, 1.0)
          for c, e in zip(cfg.centre_mm, cfg.extent_mm, strict=True)]
    X, Y, Z = np.meshgrid(*ax, indexing="ij")
    r = np.sqrt(X**2 + Y**2 + Z**2)
    shell = (r >= cfg.cortex_mm[0]) & (r <= cfg.cortex_mm[1])
    pos, mom = vm.coil.dipoles(pose)
    E = np.zeros((*X.shape, 3))
    E[shell] = sphere_efield(np.stack([X[shell], Y[shell], Z[shell]], 1) / 1e3, pos, mom,
                             cfg.didt_per_mso * 50.0)
    affine = np.eye(4)
    affine[:3, 3] = [a[0] for a in ax]
    nib.save(nib.Nifti1Image((np.linalg.norm(E, axis=-1) * shell).astype(np.float32), affine),
             tmp_path / "magnE.nii.gz")
    nib.save(nib.Nifti1Image((E * shell[..., None]).astype(np.float32), affine), tmp_path / "E.nii.gz")
    ref = vm.volume(pose, 50.0)
    inner = vm.mask > 0
    for name in ("magnE.nii.gz", "E.nii.gz"):
        got = load_efield_nifti(tmp_path / name, cfg)
        assert got.shape == cfg.shape
        # trilinear resampling of a 1-mm image near the shell's edges: compare well inside it
        from scipy import ndimage

        core = ndimage.binary_erosion(inner, iterations=2)
        assert np.abs(got[core] - ref[core]).max() < 0.05 * ref.max()
    with pytest.raises(DataError, match="outside"):
        load_efield_nifti(tmp_path / "E.nii.gz", cfg.model_copy(update={"centre_mm": (500.0, 0.0, 0.0)}))
    (tmp_path / "bad.nii").write_text("not an image")
    with pytest.raises(DataError, match="cannot read"):
        load_efield_nifti(tmp_path / "bad.nii", cfg)
