"""What accelerator this machine has: GPUs, Jetson release, TensorRT cache, TensorRT version.

Read-only probes that never raise: a missing tool, library or file is reported as absent.
``rtdecode doctor`` prints them; the TensorRT engine cache keys its folders with
:func:`tensorrt_version` and :func:`cuda_device` (:mod:`rtdecode.runtime.engine_cache`).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
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
        ``dir``, ``exists``, ``writable``, ``files`` (path below ``dir``, bytes) of engine /
        profile / timing-cache files in it and its keyed sub-folders, ``total_bytes``. No
        engine yet means the first start builds one (minutes).
    """
    state: dict[str, Any] = {"dir": str(cache_dir), "exists": cache_dir.is_dir(), "writable": False,
                             "files": [], "total_bytes": 0}
    if not state["exists"]:
        parent = next((p for p in cache_dir.parents if p.exists()), None)
        state["writable"] = bool(parent is not None and _writable(parent))
        return state
    state["writable"] = _writable(cache_dir)
    files = sorted(p for p in cache_dir.rglob("*") if p.is_file() and p.name.endswith(ENGINE_SUFFIXES))
    state["files"] = [{"name": str(p.relative_to(cache_dir)), "bytes": p.stat().st_size} for p in files]
    state["total_bytes"] = sum(f["bytes"] for f in state["files"])
    return state


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


# -- TensorRT and CUDA facts for the engine-cache key (ctypes: no torch, no pycuda) ---------------
#: CUdevice_attribute values of the CUDA driver API (cuda.h)
_CU_CC_MAJOR, _CU_CC_MINOR = 75, 76
_NVINFER_SONAMES = ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so")


def decode_trt_version(encoded: int) -> str:
    """``getInferLibVersion()`` as ``major.minor.patch``.

    TensorRT 10 encodes ``major * 10000 + minor * 100 + patch``, TensorRT 8 ``major * 1000 +
    minor * 100 + patch`` (``NvInferVersion.h``).
    """
    if encoded >= 10000:
        return f"{encoded // 10000}.{encoded // 100 % 100}.{encoded % 100}"
    return f"{encoded // 1000}.{encoded // 100 % 10}.{encoded % 100}"


def _nvinfer_candidates() -> list[str]:
    """libnvinfer names to try: the loader's search path, then a pip ``tensorrt_libs`` package."""
    names = list(_NVINFER_SONAMES)
    try:
        spec = importlib.util.find_spec("tensorrt_libs")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        names += sorted(str(p) for p in Path(folder).glob("libnvinfer.so.*"))
    return names


@functools.lru_cache(maxsize=1)
def tensorrt_version() -> str | None:
    """Version of the TensorRT library this process would load (``10.3.0``), else None."""
    for name in _nvinfer_candidates():
        try:
            lib = ctypes.CDLL(name)
            fn = lib.getInferLibVersion
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int32
        version = decode_trt_version(int(fn()))
        logger.debug("TensorRT %s (%s)", version, name)
        return version
    return None


@functools.lru_cache(maxsize=8)
def cuda_device(device_id: int = 0) -> tuple[str, str] | None:
    """Name and compute capability (``"Orin", "8.7"``) of a CUDA device, else None.

    Reads the CUDA driver (``libcuda``) directly, so it works in the daemon's environment
    without torch; respects ``CUDA_VISIBLE_DEVICES`` like ONNX Runtime does.
    """
    for soname in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(soname)
            break
        except OSError:
            continue
    else:
        return None
    dev, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    name = ctypes.create_string_buffer(256)
    try:
        ok = (lib.cuInit(0) == 0 and lib.cuDeviceGet(ctypes.byref(dev), int(device_id)) == 0
              and lib.cuDeviceGetName(name, len(name), dev) == 0
              and lib.cuDeviceGetAttribute(ctypes.byref(major), _CU_CC_MAJOR, dev) == 0
              and lib.cuDeviceGetAttribute(ctypes.byref(minor), _CU_CC_MINOR, dev) == 0)
    except AttributeError:  # not the CUDA driver after all
        return None
    if not ok:
        return None
    return name.value.decode("utf-8", errors="replace").strip(), f"{major.value}.{minor.value}"
