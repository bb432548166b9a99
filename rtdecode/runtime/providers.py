"""Execution-provider selection and options for ONNX Runtime (TensorRT → CUDA → CPU).

Two ways a GPU decoder silently ends up on the CPU are closed here:

1. the requested provider is not in this onnxruntime build (the CPU-only wheel is installed):
   :func:`choose_providers` raises (or, with the explicit opt-in ``require_first=False``,
   logs a WARNING naming the fallback);
2. the provider is in the build but cannot start (CUDA / cuDNN / TensorRT libraries missing
   or mismatched): ONNX Runtime then creates the session on the CPU and only logs to its own
   logger. :func:`check_session_providers` compares what the session got with what was asked.

:func:`provider_list` builds the ``providers=`` argument with each GPU provider's options:
TensorRT engine and timing caches in folders keyed by :mod:`rtdecode.runtime.engine_cache`
(the first build takes minutes; later starts load the engine; a changed model, TensorRT, GPU
or precision gets a new folder, so a stale engine is never loaded), an explicit optimisation
profile for the dynamic time axis of ``x`` (so a new chunk length never triggers an engine
rebuild on the hot path), optional fp16, the CUDA device id, heuristic cuDNN algorithm search
(exhaustive search would re-run for every new chunk length) and CUDA graphs when asked for.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import onnxruntime as ort

from rtdecode.errors import ModelError

logger = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
SHORT_NAMES = {full: short for short, full in PROVIDER_NAMES.items()}
#: the distributions that install the ``onnxruntime`` module on Linux
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")

#: the device each provider keeps its tensors on (OrtValue device type)
PROVIDER_DEVICE = {"tensorrt": "cuda", "cuda": "cuda", "cpu": "cpu"}

INSTALL_FIX = ("install onnxruntime-gpu built for this machine's CUDA/cuDNN (laptop: pip install "
               "onnxruntime-gpu; Jetson: the wheel from deploy/jetson/README.md), check it with "
               "`rtdecode doctor`, or set require_provider = false to allow the fallback")


def available_providers() -> list[str]:
    """Short names (tensorrt / cuda / cpu) of the providers this onnxruntime build offers."""
    avail = set(ort.get_available_providers())
    return [short for short, full in PROVIDER_NAMES.items() if full in avail]


def ort_distributions() -> dict[str, str]:
    """Installed distributions that provide the ``onnxruntime`` module (name → version).

    ``onnxruntime`` (CPU) and ``onnxruntime-gpu`` write the same files; with both installed the
    one installed last wins, and uninstalling either breaks the other.
    """
    found = {}
    for name in ORT_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def require_providers(required: list[str]) -> list[str]:
    """Check that this onnxruntime build offers every required provider; the available ones.

    Parameters
    ----------
    required : list of str
        Short names (tensorrt, cuda, cpu).

    Raises
    ------
    ModelError
        Naming what is missing, the installed onnxruntime distributions and the fix for that
        situation (CPU build installed, both builds installed, or a GPU build without TensorRT).
    """
    unknown = [p for p in required if p not in PROVIDER_NAMES]
    if unknown:
        raise ModelError(f"unknown execution provider(s) {unknown}", f"use some of {sorted(PROVIDER_NAMES)}")
    avail = available_providers()
    missing = [p for p in required if p not in avail]
    if not missing:
        return avail
    dists = ort_distributions()
    if len(dists) > 1:
        fix = ("onnxruntime (CPU) and onnxruntime-gpu are both installed and share one module: "
               "pip uninstall -y onnxruntime onnxruntime-gpu, then install only onnxruntime-gpu "
               "(Jetson: deploy/jetson/install-ort.sh)")
    elif "onnxruntime-gpu" not in dists:
        fix = ("this is the CPU-only onnxruntime (PyPI has no onnxruntime-gpu for aarch64, so a plain "
               "pip install gets the CPU build on a Jetson). Jetson: deploy/jetson/install-ort.sh "
               "(index and version in deploy/jetson/versions.env); x86_64: pip uninstall -y "
               "onnxruntime && pip install onnxruntime-gpu")
    else:
        fix = (f"this onnxruntime-gpu build lacks {', '.join(missing)}: on a Jetson install the "
               "JetPack build with deploy/jetson/install-ort.sh; on x86_64 see docs/deployment.md")
    have = ", ".join(f"{k} {v}" for k, v in dists.items()) or "no onnxruntime distribution metadata"
    raise ModelError(f"execution provider(s) {', '.join(missing)} missing: onnxruntime {ort.__version__} "
                     f"({have}) offers {', '.join(avail)}", fix)


def default_trt_cache_dir() -> Path:
    """``$RTDECODE_TRT_CACHE``, else ``$XDG_CACHE_HOME/rtdecode/trt``, else ``~/.cache/rtdecode/trt``."""
    env = os.environ.get("RTDECODE_TRT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rtdecode" / "trt"


def choose_providers(preference: list[str], *, require_first: bool = False,
                     origin: str = "model") -> list[str]:
    """Return ONNX Runtime provider names to try, in order, always ending with CPU.

    Parameters
    ----------
    preference : list of str
        Short names, most preferred first.
    require_first : bool
        Raise if the first preferred provider is not available (no silent fallback). When
        false, a fallback is allowed and logged as a WARNING.
    origin : str
        What the providers are for (named in the messages).

    Raises
    ------
    ModelError
        When ``require_first`` is set and the provider is missing, or a name is unknown.
    """
    if not preference:
        raise ModelError(f"{origin}: empty execution-provider list",
                         "list at least one of tensorrt, cuda, cpu")
    avail = available_providers()
    chosen = []
    for short in preference:
        if short not in PROVIDER_NAMES:
            raise ModelError(f"unknown execution provider {short!r}",
                             f"use one of {sorted(PROVIDER_NAMES)}")
        if short in avail:
            chosen.append(PROVIDER_NAMES[short])
    if preference[0] not in avail:
        if require_first:
            raise ModelError(
                f"{origin}: execution provider {preference[0]!r} was required but this onnxruntime "
                f"({ort.__version__}) offers {avail}", INSTALL_FIX)
        logger.warning("%s: execution provider %r is not available in this onnxruntime (%s offers %s); "
                       "falling back to %s because require_provider = false", origin, preference[0],
                       ort.__version__, avail, SHORT_NAMES[chosen[0]] if chosen else "cpu")
    if PROVIDER_NAMES["cpu"] not in chosen:
        chosen.append(PROVIDER_NAMES["cpu"])
    return chosen


@dataclass(frozen=True)
class ProviderSettings:
    """Options of the GPU providers for one model.

    Attributes
    ----------
    device_id : int
        CUDA device ordinal.
    trt_engine_dir : Path or None
        TensorRT engine cache folder of this model's key (:class:`~rtdecode.runtime.engine_cache.
        EnginePlan`); None switches the engine cache off (every start builds).
    trt_timing_dir : Path or None
        TensorRT timing cache folder (per TensorRT version and GPU); None: no timing cache.
    fp16 : bool
        Let TensorRT build fp16 kernels (faster on Jetson / tensor cores; parity within ~1e-3).
    cuda_graph : bool
        CUDA provider: capture CUDA graphs (needs IOBinding with fixed shapes and addresses).
    max_frames : int
        Largest time axis ``T`` of ``x`` in one run (TensorRT profile maximum).
    x_channels : int
        Channels ``C`` of ``x`` (for the TensorRT profile), 0 when unknown.
    """

    device_id: int = 0
    trt_engine_dir: Path | None = None
    trt_timing_dir: Path | None = None
    fp16: bool = False
    cuda_graph: bool = False
    max_frames: int = 2048
    x_channels: int = 0


def trt_profile(x_channels: int, max_frames: int) -> tuple[str, str, str] | None:
    """The explicit TensorRT optimisation profile of ``x`` (min, opt, max shapes), or None.

    One profile for the dynamic time axis: ``[1, C, 1]`` up to ``[1, C, max_frames]``, so a new
    chunk length never rebuilds the engine. None when the channel count is unknown (0).
    """
    if x_channels <= 0:
        return None
    c, t = x_channels, max(1, max_frames)
    return f"x:1x{c}x1", f"x:1x{c}x1", f"x:1x{c}x{t}"


def provider_options(short: str, settings: ProviderSettings) -> dict[str, Any]:
    """ONNX Runtime provider options for one provider (empty for the CPU).

    Parameters
    ----------
    short : str
        tensorrt, cuda or cpu.
    settings : ProviderSettings

    Returns
    -------
    dict
        String-valued options as ONNX Runtime expects them.
    """
    if short == "cuda":
        opts = {
            "device_id": str(settings.device_id),
            # exhaustive search would benchmark every conv again for each new chunk length T
            "cudnn_conv_algo_search": "HEURISTIC",
            "do_copy_in_default_stream": "1",
            "arena_extend_strategy": "kSameAsRequested",
            # float32 parity with the CPU and offline paths (TF32 convs differ by ~1e-3); these
            # models are latency-bound, not throughput-bound, so TF32 buys nothing here
            "use_tf32": "0",
        }
        if settings.cuda_graph:
            opts["enable_cuda_graph"] = "1"
        return opts
    if short == "tensorrt":
        opts = {
            "device_id": str(settings.device_id),
            "trt_engine_cache_enable": "True" if settings.trt_engine_dir is not None else "False",
            "trt_timing_cache_enable": "True" if settings.trt_timing_dir is not None else "False",
            "trt_fp16_enable": "True" if settings.fp16 else "False",
        }
        if settings.trt_engine_dir is not None:
            opts["trt_engine_cache_path"] = str(settings.trt_engine_dir)
        if settings.trt_timing_dir is not None:
            opts["trt_timing_cache_path"] = str(settings.trt_timing_dir)
        profile = trt_profile(settings.x_channels, settings.max_frames)
        for bound, shape in zip(("min", "opt", "max"), profile or (), strict=False):
            opts[f"trt_profile_{bound}_shapes"] = shape
        # no trt_cuda_graph_enable: TensorRT captures one graph per session, but the ping-pong
        # state buffers alternate between two address sets (rtdecode's CUDA graphs: cuda only)
        return opts
    return {}


def provider_list(names: list[str], settings: ProviderSettings) -> list[Any]:
    """The ``providers=`` argument of ``InferenceSession``: (name, options) pairs, CPU plain."""
    out: list[Any] = []
    for full in names:
        opts = provider_options(SHORT_NAMES.get(full, "cpu"), settings)
        out.append((full, opts) if opts else full)
    return out


def check_session_providers(requested: list[str], got: list[str], *, require_first: bool,
                            origin: str) -> str:
    """Compare the providers a session got with the ones asked for; return the one in use.

    ONNX Runtime creates the session on the next provider (ultimately the CPU) when a GPU
    provider fails to initialise, and says so only in its own log. This makes it loud.

    Parameters
    ----------
    requested : list of str
        Full provider names passed to the session, most preferred first.
    got : list of str
        ``session.get_providers()``.
    require_first : bool
        Raise when the first requested provider is not the first one in use.
    origin : str
        The model (named in the messages).

    Returns
    -------
    str
        Short name of the provider in use (first of ``got``).

    Raises
    ------
    ModelError
        When ``require_first`` is set and the session fell back.
    """
    in_use = SHORT_NAMES.get(got[0], got[0]) if got else "cpu"
    want = SHORT_NAMES.get(requested[0], requested[0]) if requested else "cpu"
    if want != in_use:
        msg = (f"{origin}: onnxruntime could not start the {want!r} execution provider "
               f"(the session runs on {got}); usually CUDA, cuDNN or TensorRT libraries are missing "
               "or do not match this onnxruntime-gpu build")
        if require_first:
            raise ModelError(msg, INSTALL_FIX)
        logger.warning("%s; falling back to %s because require_provider = false", msg, in_use)
    return in_use
