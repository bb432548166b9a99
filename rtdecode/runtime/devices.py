"""What accelerator this machine has, for ``rtdecode doctor``: GPUs, Jetson release, TensorRT cache.

Read-only probes that never raise: a missing tool or file is reported as absent.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

JETSON_RELEASE = Path("/etc/nv_tegra_release")
ENGINE_SUFFIXES = (".engine", ".profile", ".timing", ".cache")


def nvidia_gpus(timeout_s: float = 5.0) -> list[dict[str, Any]] | None:
    """GPUs listed by ``nvidia-smi`` (name, memory in MiB, driver), or None without nvidia-smi.

    Returns
    -------
    list of dict or None
        ``[]`` when nvidia-smi exists but reports no GPU or fails (the error is in ``error``).
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    query = "name,memory.total,memory.used,driver_version"
    try:
        out = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [{"error": f"nvidia-smi failed: {exc}"}]
    if out.returncode != 0:
        return [{"error": f"nvidia-smi exit {out.returncode}: {out.stderr.strip()[:200]}"}]
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        name, total, used, driver = parts

        def _num(v: str) -> float | None:
            try:
                return float(v)
            except ValueError:
                return None  # "[N/A]" on Jetson / some laptops
        gpus.append({"name": name, "memory_total_mib": _num(total), "memory_used_mib": _num(used),
                     "driver": driver})
    return gpus


def jetson_release(path: Path = JETSON_RELEASE) -> str | None:
    """The L4T release line of a Jetson (``# R36 (release), REVISION: 3.0, ...``), else None."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[0].strip("# ").strip()
    except (OSError, IndexError):
        return None


def trt_cache_state(cache_dir: Path) -> dict[str, Any]:
    """What the TensorRT engine cache folder holds.

    Parameters
    ----------
    cache_dir : Path

    Returns
    -------
    dict
        ``dir``, ``exists``, ``writable``, ``files`` (name, bytes) of engine / profile /
        timing-cache files, ``total_bytes``. No engine yet means the first start builds one
        (minutes).
    """
    state: dict[str, Any] = {"dir": str(cache_dir), "exists": cache_dir.is_dir(), "writable": False,
                             "files": [], "total_bytes": 0}
    if not state["exists"]:
        parent = next((p for p in cache_dir.parents if p.exists()), None)
        state["writable"] = bool(parent is not None and _writable(parent))
        return state
    state["writable"] = _writable(cache_dir)
    files = sorted(p for p in cache_dir.iterdir() if p.is_file() and p.name.endswith(ENGINE_SUFFIXES))
    state["files"] = [{"name": p.name, "bytes": p.stat().st_size} for p in files]
    state["total_bytes"] = sum(f["bytes"] for f in state["files"])
    return state


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)
