"""``rtdecode verify`` for event (M2M-Net) models: the graph, its torch original and the volume path.

On volumes of seeded random stimuli inside the model's training ranges (coil centres in the
``bounds`` box, put on the head's radius, the trained orientation and intensities) it checks

(a) the graph is stateless: the volumes in one batch give what they give one at a time;
(b) ONNX Runtime against the torch model from the ``<stem>.torch.npz`` sidecar (skipped, with
    the reason, without torch or a sidecar);
(c) the volume path the service runs per pulse (field on the coarse lattice, interpolated)
    against the exact spherical-head field at random voxels of the cortex (tolerance
    ``volume_tolerance`` of the largest |E|);
(d) every prediction is finite and inside the trained output range (± ``output_margin`` of it).

The report has the shape of :func:`rtdecode.nn.verify.verify_model`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.nn.sidecar import sidecar_path
from rtdecode.nn.verify import _report, compare
from rtdecode.tms.coil import CoilPose3D
from rtdecode.tms.efield import sphere_efield
from rtdecode.tms.m2m_model import M2mModel

logger = logging.getLogger(__name__)

__all__ = ["sample_poses", "verify_m2m"]


def sample_poses(model: M2mModel, n: int, seed: int) -> tuple[list[CoilPose3D], np.ndarray]:
    """``n`` coil poses and intensities (%MSO) drawn inside the model's training ranges."""
    b = model.meta.bounds.input
    lo, hi = np.asarray(b.lo), np.asarray(b.hi)
    rng = np.random.default_rng(seed)
    head = np.asarray(model.meta.volume.head_centre_mm)
    radius = float(np.linalg.norm(0.5 * (lo[:3] + hi[:3]) - head))
    poses, mso = [], rng.uniform(lo[9], hi[9], n)
    for _ in range(n):
        p = rng.uniform(lo[:3], hi[:3])
        normal = (p - head) / np.linalg.norm(p - head)
        centre = head + radius * normal
        poses.append(CoilPose3D.make(centre / 1e3, normal, 0.5 * (lo[6:9] + hi[6:9])))
    return poses, mso


def _volume_check(model: M2mModel, pose: CoilPose3D, mso: float, tolerance: float, seed: int
                  ) -> dict[str, Any]:
    vm = model.volumes
    mag = vm.magnitude(vm.lattice_field(pose), mso)
    idx = np.argwhere(vm.mask > 0)
    idx = idx[np.random.default_rng(seed).choice(len(idx), min(400, len(idx)), replace=False)]
    axes = vm.cfg.axes_mm()
    pts = np.stack([axes[k][idx[:, k]] for k in range(3)], axis=1) / 1e3
    pos, mom = vm.coil.dipoles(pose)
    exact = np.linalg.norm(sphere_efield(pts, pos, mom, vm.cfg.didt_per_mso * mso,
                                         np.asarray(vm.cfg.head_centre_mm) / 1e3), axis=1)
    got = mag[idx[:, 0], idx[:, 1], idx[:, 2]]
    scale = float(np.abs(exact).max()) or 1.0
    return compare(f"volume vs exact field, / max|E| (tolerance {tolerance:g})", got / scale,
                   exact / scale, tolerance)


def _torch_outputs(path: Path, vols: np.ndarray, heads: list[str]) -> dict[str, np.ndarray] | str:
    if not sidecar_path(path).exists():
        return f"no sidecar {sidecar_path(path).name}"
    try:
        import torch

        from rtdecode.nn.m2m.export import load_sidecar
    except ImportError:
        return "torch is not installed"
    net = load_sidecar(path)
    with torch.no_grad():
        outs = net(torch.from_numpy(vols))
    return {h: o.numpy() for h, o in zip(heads, outs, strict=True)}


def verify_m2m(path: str | Path, *, n: int = 6, seed: int = 0, tolerance: float = 1e-4,
               volume_tolerance: float = 0.02, output_margin: float = 0.25) -> dict[str, Any]:
    """Verify an M2M-Net model file (see the module docstring); returns the report."""
    path = Path(path)
    model = M2mModel(path)
    poses, mso = sample_poses(model, n, seed)
    vm = model.volumes
    vols = np.stack([vm.magnitude(vm.lattice_field(p), float(m)) for p, m in zip(poses, mso, strict=True)])
    comps, skipped = [], []
    batch = model.run(vols)
    single = [model.run(v) for v in vols]
    for h in model.meta.heads:
        comps.append(compare(f"onnx batch vs one at a time [{h}]",
                             batch[h], np.concatenate([s[h] for s in single]), tolerance))
    ref = _torch_outputs(path, vols, model.meta.heads)
    if isinstance(ref, str):
        skipped.append({"name": "torch vs onnx", "reason": ref})
    else:
        comps += [compare(f"onnx vs torch [{h}]", batch[h], ref[h], tolerance) for h in model.meta.heads]
    comps.append(_volume_check(model, poses[0], float(mso[0]), volume_tolerance, seed))
    comps.append(_range_check(model, batch, output_margin))
    return _report(path, comps, skipped, {"cpu": "CPUExecutionProvider"}, tolerance, n, seed, 1)


def _range_check(model: M2mModel, out: dict[str, np.ndarray], margin: float) -> dict[str, Any]:
    r = model.meta.bounds.output
    mn, mx = np.asarray(r.min), np.asarray(r.max)
    pad = margin * np.maximum(mx - mn, 1e-6)
    y = out[model.meta.primary]
    excess = np.maximum(np.maximum(mn - pad - y, y - mx - pad), 0.0)
    name = f"{model.meta.primary} MEPs finite and within the trained range ± {margin:g} of it"
    ok = bool(np.isfinite(y).all() and not excess.any())
    worst = float(excess.max()) if excess.size else 0.0
    return {"name": name, "max_abs": worst, "max_rel": worst / float(np.max(mx - mn) or 1.0), "ok": ok}
