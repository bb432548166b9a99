"""TensorRT engine cache folders keyed so that a stale engine is never loaded.

ONNX Runtime's TensorRT provider looks up a serialized engine in ``trt_engine_cache_path`` and
loads it without checking that it was built by the same TensorRT, for the same GPU, from the
same model bytes and at the same precision (microsoft/onnxruntime#22244). rtdecode therefore
gives each combination its own folder below the cache root::

    <root>/<model stem>/trt<TensorRT>-<gpu>-sm<cc>-<fp16|fp32>-<digest>/   engine + profile files,
                                                                         engine-key.json
    <root>/_timing/trt<TensorRT>-<gpu>-sm<cc>/                          TensorRT timing cache

``digest`` is the SHA-256 of every key field (model SHA-256, TensorRT, GPU name and compute
capability, precision, ONNX Runtime version, the optimisation profile of ``x``), so any
change lands in a new, empty folder and TensorRT builds a fresh engine; the old folder is
reported as *stale* (``rtdecode doctor``) and can be removed (``rtdecode trt-build --prune``).
When the TensorRT version or the GPU cannot be read, the engine cache is switched off rather
than risk loading a stale engine.

The build itself runs inside ONNX Runtime (minutes on a Jetson, no output): :data:`ENGINE_BUILDS`
records which build runs since when, so the daemon's start-up status can say
"building TensorRT engine … s" (:func:`build_phase`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from rtdecode.runtime.devices import cuda_device, tensorrt_version
from rtdecode.runtime.providers import trt_profile

logger = logging.getLogger(__name__)

MANIFEST = "engine-key.json"
TIMING_DIR = "_timing"


@dataclass(frozen=True)
class Platform:
    """What an engine was built with, besides the model.

    Attributes
    ----------
    tensorrt : str
        TensorRT library version (``10.3.0``).
    gpu : str
        CUDA device name (``Orin``).
    compute_capability : str
        ``major.minor`` (``8.7``).
    onnxruntime : str
        ONNX Runtime version (its TensorRT provider writes the cache files).
    """

    tensorrt: str
    gpu: str
    compute_capability: str
    onnxruntime: str

    @property
    def tag(self) -> str:
        """``trt10.3.0-orin-sm87``: folder-name part shared by engines and the timing cache."""
        gpu = re.sub(r"[^a-z0-9]+", "-", self.gpu.lower()).strip("-") or "gpu"
        return f"trt{self.tensorrt}-{gpu}-sm{self.compute_capability.replace('.', '')}"


def probe_platform(device_id: int = 0) -> Platform | None:
    """This machine's TensorRT version and CUDA device, or None when either cannot be read."""
    trt = tensorrt_version()
    dev = cuda_device(device_id)
    if trt is None or dev is None:
        return None
    return Platform(tensorrt=trt, gpu=dev[0], compute_capability=dev[1], onnxruntime=ort.__version__)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything a TensorRT engine depends on.

    Attributes
    ----------
    model : str
        Model file stem (names the folder; not part of the identity).
    model_sha256 : str
        SHA-256 of the model file.
    precision : str
        ``fp16`` or ``fp32``.
    profile : str
        The optimisation profile of ``x`` (``x:1x64x1..x:1x64x2048``), or ``none``.
    platform : Platform
    """

    model: str
    model_sha256: str
    precision: str
    profile: str
    platform: Platform

    def fields(self) -> dict[str, str]:
        """The key as flat, JSON-ready fields (what :data:`MANIFEST` stores)."""
        out = {k: v for k, v in asdict(self).items() if k != "platform"}
        out.update(asdict(self.platform))
        return out

    @property
    def digest(self) -> str:
        """SHA-256 (hex) over every field but the model's name."""
        ident = {k: v for k, v in self.fields().items() if k != "model"}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    @property
    def relpath(self) -> Path:
        """This key's engine folder below the cache root."""
        return Path(self.model) / f"{self.platform.tag}-{self.precision}-{self.digest[:12]}"


def engine_key(model: Path, *, x_channels: int, max_frames: int, fp16: bool,
               platform: Platform) -> EngineKey:
    """The key of the engine TensorRT builds for this model file and these settings.

    Parameters
    ----------
    model : Path
        The ``.onnx`` file (hashed).
    x_channels : int
        Channels of ``x`` (the profile), 0 when unknown.
    max_frames : int
        Longest time axis per run (the profile maximum).
    fp16 : bool
        TensorRT fp16 kernels allowed.
    platform : Platform
    """
    profile = trt_profile(x_channels, max_frames)
    return EngineKey(model=model.stem, model_sha256=file_sha256(model),
                     precision="fp16" if fp16 else "fp32",
                     profile=f"{profile[0]}..{profile[2]}" if profile else "none", platform=platform)


@dataclass
class CacheStatus:
    """What the cache holds for one key.

    Attributes
    ----------
    state : str
        ``hit`` (an engine built for exactly this key), ``miss`` (none: the next start builds),
        ``stale`` (none for this key, but engines of this model built for another model file,
        TensorRT, GPU, ONNX Runtime, precision or profile; never loaded), ``unavailable`` (no
        TensorRT / CUDA to key with: the engine cache is off).
    detail : str
        One line for people.
    stale : dict
        Folder → the key fields that differ (``field: cached → now``).
    """

    state: str
    detail: str
    stale: dict[Path, list[str]] = field(default_factory=dict)


def read_manifest(folder: Path) -> dict[str, str] | None:
    """The key fields stored in an engine folder, or None (absent or unreadable)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def write_manifest(folder: Path, key: EngineKey) -> None:
    """Record the key next to the engine (after a successful build or load)."""
    (folder / MANIFEST).write_text(json.dumps(key.fields(), indent=2, sort_keys=True) + "\n",
                                   encoding="utf-8")


def _engines_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.engine") if p.is_file())


def cache_status(root: Path, key: EngineKey) -> CacheStatus:
    """Hit, miss or stale for one key (reads the folders and their manifests only).

    Parameters
    ----------
    root : Path
        Cache root (``trt_cache_dir`` / ``$RTDECODE_TRT_CACHE``).
    key : EngineKey
    """
    here = root / key.relpath
    if read_manifest(here) == key.fields() and _engines_in(here):
        return CacheStatus("hit", f"engine built for this model, TensorRT {key.platform.tensorrt}, "
                           f"{key.platform.gpu} (sm {key.platform.compute_capability}), "
                           f"{key.precision} in {here}")
    stale: dict[Path, list[str]] = {}
    now = key.fields()
    for folder in sorted((root / key.model).glob("*")) if (root / key.model).is_dir() else []:
        old = read_manifest(folder)
        if folder == here or old is None:
            continue
        stale[folder] = [f"{k}: {old.get(k, '?')} → {v}" for k, v in now.items()
                         if k != "model" and old.get(k) != v]
    if stale:
        return CacheStatus("stale", f"{len(stale)} engine folder(s) of {key.model} built for something "
                           f"else ({'; '.join(next(iter(stale.values()))[:3])}): never loaded; the next "
                           f"start builds into {here}", stale)
    return CacheStatus("miss", f"no engine yet for {key.model}: the next start builds one into {here} "
                       "(minutes on a Jetson; `rtdecode trt-build` does it ahead)")


def prune(root: Path, key: EngineKey) -> list[Path]:
    """Remove this model's engine folders built for another key; returns what was removed."""
    removed = []
    for folder in cache_status(root, key).stale:
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@dataclass(frozen=True)
class EnginePlan:
    """Where one model's TensorRT engine and timing cache go, and what is there already.

    Attributes
    ----------
    root : Path
        Cache root.
    key : EngineKey or None
        None when TensorRT or the GPU cannot be read (the engine cache is then off).
    status : CacheStatus
    """

    root: Path
    key: EngineKey | None
    status: CacheStatus

    @property
    def engine_dir(self) -> Path | None:
        """This key's engine folder (None: engine cache off)."""
        return self.root / self.key.relpath if self.key is not None else None

    @property
    def timing_dir(self) -> Path | None:
        """The timing-cache folder of this TensorRT and GPU (None: off)."""
        return self.root / TIMING_DIR / self.key.platform.tag if self.key is not None else None

    @property
    def builds(self) -> bool:
        """Whether opening the model builds an engine (anything but a cache hit)."""
        return self.status.state != "hit"


def plan(model: Path, root: Path, *, x_channels: int, max_frames: int, fp16: bool,
         device_id: int = 0, platform: Platform | None = None) -> EnginePlan:
    """The engine plan of one model: its key, folders and cache status.

    ``platform`` defaults to :func:`probe_platform` (this machine); give one to plan for
    another machine or in tests.
    """
    platform = platform or probe_platform(device_id)
    if platform is None:
        status = CacheStatus("unavailable", "TensorRT or the CUDA device cannot be read on this machine "
                             "(no libnvinfer / libcuda): the engine cache is off, every start builds")
        return EnginePlan(root, None, status)
    key = engine_key(model, x_channels=x_channels, max_frames=max_frames, fp16=fp16, platform=platform)
    return EnginePlan(root, key, cache_status(root, key))


class EngineBuildTracker:
    """Which TensorRT engine builds run now, and since when (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, tuple[str, float]] = {}
        self._next = 0

    @contextmanager
    def building(self, model: str) -> Iterator[None]:
        """Mark a build of ``model`` for the duration of the ``with`` block."""
        with self._lock:
            token = self._next
            self._next += 1
            self._active[token] = (model, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                del self._active[token]

    def current(self) -> tuple[str, float] | None:
        """(model, seconds since its build started) of the oldest running build, else None."""
        with self._lock:
            if not self._active:
                return None
            model, t0 = min(self._active.values(), key=lambda v: v[1])
        return model, time.monotonic() - t0


#: the process's engine builds (the daemon's start-up heartbeat reads it)
ENGINE_BUILDS = EngineBuildTracker()


def build_phase(phase: str) -> str:
    """``phase``, or "building TensorRT engine …" with the elapsed time while a build runs."""
    now = ENGINE_BUILDS.current()
    if now is None:
        return phase
    model, elapsed = now
    return (f"building TensorRT engine for {model}: {elapsed:.0f} s so far (only after a model, "
            "TensorRT, GPU or precision change; later starts load it from the cache)")


def describe(plan_: EnginePlan) -> dict[str, Any]:
    """The plan as JSON-ready fields (doctor, trt-build)."""
    out: dict[str, Any] = {"state": plan_.status.state, "detail": plan_.status.detail,
                           "root": str(plan_.root),
                           "engine_dir": str(plan_.engine_dir) if plan_.engine_dir else None,
                           "stale": {str(k): v for k, v in plan_.status.stale.items()}}
    if plan_.key is not None:
        out["key"] = plan_.key.fields()
    return out
