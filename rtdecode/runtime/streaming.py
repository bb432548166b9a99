"""A stateful single-step ONNX model (the streaming-state contract, docs/architecture.md).

Graph inputs ``x`` (float32 ``[1, C, T]``, T dynamic) and ``state_0 … state_k``;
outputs ``y`` (``[1, K, T]``) and ``state_0_out …``. The wrapper owns the state
between calls, so ``step`` on consecutive chunks equals one offline pass.

Two execution paths give the same numbers (tested): the plain path (``session.run`` with
the state as numpy feeds; the default on the CPU, where it is as fast) and the IOBinding
path (:mod:`rtdecode.runtime.binding`: the state stays on the provider's device and is
ping-ponged between two buffers; the default on CUDA / TensorRT, optionally with CUDA graphs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rtdecode.errors import ModelError
from rtdecode.resource import Resource
from rtdecode.runtime import engine_cache
from rtdecode.runtime.binding import BoundStepper
from rtdecode.runtime.engine_cache import ENGINE_BUILDS, EnginePlan
from rtdecode.runtime.metadata import ModelMetadata
from rtdecode.runtime.providers import (
    PROVIDER_DEVICE,
    ProviderSettings,
    check_session_providers,
    choose_providers,
    default_trt_cache_dir,
    provider_list,
)
from rtdecode.runtime.warmup import WarmupReport, warm_up_until_stable

logger = logging.getLogger(__name__)


def read_metadata(path: str | Path) -> ModelMetadata:
    """Read and validate the rtdecode metadata of an ONNX file without building kernels."""
    path = Path(path)
    sess = _load_session(path, ["CPUExecutionProvider"], threads=1)
    return ModelMetadata.from_props(sess.get_modelmeta().custom_metadata_map, str(path))


def _load_session(path: Path, providers: list, threads: int) -> ort.InferenceSession:
    if not path.exists():
        raise ModelError(f"model file {path} does not exist", "check the `model` path in the config")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail...)
        gpu = any((p[0] if isinstance(p, tuple) else p) != "CPUExecutionProvider" for p in providers)
        fix = ("the file is corrupt or not an ONNX model; rebuild it (make models)" if not gpu else
               "if it loads with providers = [\"cpu\"], the GPU provider options are the cause "
               "(CUDA graphs need every node on the GPU; check the TensorRT cache directory is "
               "writable); run `rtdecode doctor`")
        raise ModelError(f"cannot load model {path}: {type(exc).__name__}: {exc}", fix) from None


def _zero_feeds(meta: ModelMetadata) -> dict[str, np.ndarray]:
    """One zero frame ``x`` float32 ``(1, C, 1)`` and zero states: a run that changes nothing."""
    feeds = {s.name: np.zeros(s.shape, dtype=np.float32) for s in meta.states}
    feeds["x"] = np.zeros((1, meta.model_channels, 1), dtype=np.float32)
    return feeds


class StreamingModel(Resource):
    """A streaming ONNX decoder with explicit state.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    providers : list of str
        Execution-provider preference (short names: tensorrt, cuda, cpu).
    require_provider : bool
        Fail unless the first preference is available and actually starts; when false a
        fallback is allowed and logged as a WARNING.
    threads : int
        Intra-op threads (0 = ONNX Runtime default).
    device_id : int
        CUDA device ordinal (GPU providers).
    trt_cache_dir : path, optional
        TensorRT cache root (default: ``$RTDECODE_TRT_CACHE`` or ``~/.cache/rtdecode/trt``);
        each model / TensorRT / GPU / precision gets its own folder below it.
    fp16 : bool
        Allow TensorRT fp16 kernels.
    io_binding : bool or "auto"
        Keep the state on the device with IOBinding; ``auto``: on for GPU providers, off on CPU.
    cuda_graph_frames : int, optional
        Capture CUDA graphs for steps of exactly this many frames (cuda provider, IOBinding).
    max_frames : int
        Longest ``T`` per ONNX run; longer chunks are split (streaming makes that exact).
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None, *,
                 require_provider: bool = False, threads: int = 1, device_id: int = 0,
                 trt_cache_dir: str | Path | None = None, fp16: bool = False,
                 io_binding: bool | str = "auto", cuda_graph_frames: int | None = None,
                 max_frames: int = 2048) -> None:
        if io_binding not in (True, False, "auto"):
            raise ModelError(f"io_binding={io_binding!r}", "use true, false or \"auto\"")
        if max_frames < 1:
            raise ModelError(f"max_frames={max_frames}", "use a positive frame count")
        self.path = Path(path)
        self.preference = list(providers) if providers else ["cpu"]
        self.require_provider = require_provider
        self.threads = threads
        self.device_id = device_id
        self.trt_cache_dir = Path(trt_cache_dir) if trt_cache_dir is not None else None
        self.fp16 = fp16
        self.io_binding_mode = io_binding
        self.cuda_graph_frames = cuda_graph_frames
        self.max_frames = max_frames
        self.meta: ModelMetadata | None = None
        self.provider: str | None = None
        self.provider_short: str | None = None
        self.session_providers: list[str] = []
        self.warmup: WarmupReport | None = None
        self.engine_plan: EnginePlan | None = None
        self._sess: ort.InferenceSession | None = None
        self._host_state: dict[str, np.ndarray] = {}
        self._warm_frame: np.ndarray | None = None
        self._bound: BoundStepper | None = None
        self._out_names: list[str] = []
        self.frames_seen = 0

    # -- lifecycle -------------------------------------------------------
    def open(self) -> StreamingModel:
        """Load the session, check the contract and the provider in use, allocate zero state.

        With TensorRT, the engine comes from this model's keyed cache folder
        (:mod:`rtdecode.runtime.engine_cache`); on a miss it is built here (session creation and
        one zero step, marked in :data:`~rtdecode.runtime.engine_cache.ENGINE_BUILDS`).
        """
        origin = f"model {self.path.name}"
        names = choose_providers(self.preference, require_first=self.require_provider, origin=origin)
        settings = ProviderSettings(device_id=self.device_id, fp16=self.fp16,
                                    cuda_graph=self.cuda_graph_frames is not None
                                    and names[0] == "CUDAExecutionProvider",
                                    max_frames=self.max_frames)
        self.engine_plan = None
        if "TensorrtExecutionProvider" in names:
            settings = self._plan_engine(settings, origin)
        building = self.engine_plan is not None and self.engine_plan.builds
        t0 = time.perf_counter()
        with ENGINE_BUILDS.building(self.path.name) if building else nullcontext():
            sess = _load_session(self.path, provider_list(names, settings), self.threads)
            meta = ModelMetadata.from_props(sess.get_modelmeta().custom_metadata_map, str(self.path))
            self._check_contract(sess, meta)
            self.session_providers = list(sess.get_providers())
            short = check_session_providers(names, self.session_providers,
                                            require_first=self.require_provider, origin=origin)
            if short == "tensorrt" and building:  # TensorRT may defer the build to the first run
                sess.run(["y"] + [st.name + "_out" for st in meta.states], _zero_feeds(meta))
        if short == "tensorrt" and self.engine_plan is not None:
            self._record_engine(origin, time.perf_counter() - t0 if building else None)
        self._sess, self.meta = sess, meta
        self.provider = self.session_providers[0]
        self.provider_short = short
        self._set_up_stepping(sess, meta, short, origin)
        return self

    def _plan_engine(self, settings: ProviderSettings, origin: str) -> ProviderSettings:
        """Key the TensorRT cache folders for this model and create them; the settings to use."""
        root = self.trt_cache_dir if self.trt_cache_dir is not None else default_trt_cache_dir()
        channels = read_metadata(self.path).model_channels
        plan = engine_cache.plan(self.path, root, x_channels=channels, max_frames=self.max_frames,
                                 fp16=self.fp16, device_id=self.device_id)
        for folder in (plan.engine_dir, plan.timing_dir):
            try:
                if folder is not None:
                    folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ModelError(f"{origin}: TensorRT cache folder {folder} cannot be created: "
                                 f"{exc.strerror}",
                                 "set trt_cache_dir (or RTDECODE_TRT_CACHE) to a writable folder") from None
        if plan.key is None:
            logger.warning("%s: %s", origin, plan.status.detail)
        elif plan.builds:
            logger.warning("%s: TensorRT engine cache %s: %s. Building it now: this takes minutes on a "
                           "Jetson and blocks the start; keep %s on persistent storage", origin,
                           plan.status.state, plan.status.detail, root)
        self.engine_plan = plan
        return replace(settings, x_channels=channels, trt_engine_dir=plan.engine_dir,
                       trt_timing_dir=plan.timing_dir)

    def _record_engine(self, origin: str, build_s: float | None) -> None:
        """After TensorRT started: store the key next to the engine, log the build time."""
        plan = self.engine_plan
        if plan is None or plan.key is None or plan.engine_dir is None:
            return
        engine_cache.write_manifest(plan.engine_dir, plan.key)
        if build_s is not None:
            logger.info("%s: TensorRT engine built in %.1f s into %s", origin, build_s, plan.engine_dir)
        else:
            logger.info("%s: TensorRT engine loaded from %s", origin, plan.engine_dir)

    def _set_up_stepping(self, sess: ort.InferenceSession, meta: ModelMetadata, short: str,
                         origin: str) -> None:
        """Plain run or IOBinding (with CUDA graphs), zero state, and the start-up log line."""
        device = PROVIDER_DEVICE.get(short, "cpu")
        use_binding = (device != "cpu") if self.io_binding_mode == "auto" else bool(self.io_binding_mode)
        graph = self.cuda_graph_frames if (short == "cuda" and use_binding) else None
        if self.cuda_graph_frames is not None and graph is None:
            logger.warning("%s: cuda_graph_frames=%d ignored (needs the cuda provider and IOBinding; "
                           "running on %s, io_binding=%s)", origin, self.cuda_graph_frames, short,
                           use_binding)
        self._out_names = ["y"] + [s.name + "_out" for s in meta.states]
        self._bound = None
        if use_binding:
            self._bound = BoundStepper(sess, meta.states, device=device, device_id=self.device_id,
                                       x_channels=meta.model_channels, y_channels=len(meta.outputs),
                                       graph_frames=graph, cuda_graph=graph is not None)
        self.reset()
        path_kind = "IOBinding, state on " + device if self._bound is not None else "plain run"
        if graph is not None and self._bound is not None:
            path_kind += f", CUDA graphs for {graph}-frame steps"
        extra = ""
        if short == "tensorrt" and self.engine_plan is not None:
            extra = f", TensorRT cache {self.engine_plan.engine_dir or 'off'}{', fp16' if self.fp16 else ''}"
        logger.info("model %s (%s) on %s [session providers %s; %s%s]: %d ch @ %.6g Hz → %d outputs, "
                    "receptive field %d frames", meta.name, self.path.name, self.provider,
                    ", ".join(self.session_providers), path_kind, extra, meta.model_channels,
                    meta.model_rate_hz, len(meta.outputs), meta.receptive_field)

    def close(self) -> None:
        """Release the session (idempotent)."""
        self._bound = None
        self._sess = None

    @property
    def uses_io_binding(self) -> bool:
        """Whether steps run through IOBinding (state kept on the device)."""
        return self._bound is not None

    @property
    def _state(self) -> dict[str, np.ndarray]:
        """The current states as host arrays (a copy on the IOBinding path; not for the hot path)."""
        if self._bound is not None:
            return self._bound.state_values()
        return self._host_state

    def state_devices(self) -> list[str]:
        """Device names of the state buffers: the OrtValues on the IOBinding path, else ``cpu`` (numpy)."""
        if self._bound is not None:
            return self._bound.state_devices()
        return ["cpu (numpy)"] * len(self._host_state)

    def _check_contract(self, sess: ort.InferenceSession, meta: ModelMetadata) -> None:
        ins = {i.name: i for i in sess.get_inputs()}
        outs = {o.name: o for o in sess.get_outputs()}
        where = str(self.path)
        fix = "re-export the model so it follows the streaming-state contract (docs/models.md)"
        if "x" not in ins or "y" not in outs:
            raise ModelError(f"{where}: graph needs input 'x' and output 'y' "
                             f"(has inputs {sorted(ins)}, outputs {sorted(outs)})", fix)
        xs = ins["x"].shape
        if len(xs) != 3 or (isinstance(xs[1], int) and xs[1] != meta.model_channels):
            raise ModelError(f"{where}: input x has shape {xs}, expected [1, {meta.model_channels}, T]", fix)
        if ins["x"].type != "tensor(float)":
            raise ModelError(f"{where}: input x is {ins['x'].type}, expected tensor(float)", fix)
        for st in meta.states:
            if st.name not in ins or st.name + "_out" not in outs:
                raise ModelError(f"{where}: state {st.name!r} declared in metadata but the graph "
                                 f"lacks input {st.name!r} or output {st.name + '_out'!r}", fix)
            gshape = ins[st.name].shape
            if [d for d in gshape] != st.shape:
                raise ModelError(f"{where}: state {st.name} has graph shape {gshape}, "
                                 f"metadata says {st.shape}", fix)
        extra = set(ins) - {"x"} - {s.name for s in meta.states}
        if extra:
            raise ModelError(f"{where}: graph inputs {sorted(extra)} are not declared as states", fix)

    # -- streaming -------------------------------------------------------
    def warm_step(self) -> bool:
        """Run :meth:`step` on one zero frame from the current state, then put the state back.

        Keeps the model's code, weights, state and ONNX Runtime's buffers in the CPU caches
        between real steps (a decimating chain calls the model on one input tick in many): the
        same calls on the same arrays as the next real step, whose result does not change (the
        outputs are new arrays; the state and ``frames_seen`` are restored). On the development
        VM a real step right after it took 41 µs at p50 against 81 µs after a run on zero scratch
        states and 238 µs after none (the step alone, back to back: 26 µs). Returns False (and
        does nothing) on the IOBinding / CUDA-graph path, whose state lives on the device.
        """
        if self._sess is None or self.meta is None:
            raise ModelError(f"model {self.path} is not open", "call open() before warm_step()")
        if self._bound is not None:
            return False
        if self._warm_frame is None:
            self._warm_frame = np.zeros((1, self.meta.model_channels), dtype=np.float32)
        state, seen = self._host_state, self.frames_seen
        self._host_state = dict(state)  # step() rebinds the entries of this copy only
        try:
            self.step(self._warm_frame)
        finally:
            self._host_state, self.frames_seen = state, seen
        return True

    def reset(self) -> None:
        """Zero all states (equals the front zero-padding of the offline model)."""
        assert self.meta is not None, "open() first"
        if self._bound is not None:
            self._bound.reset()
            self._host_state = {}
        else:
            self._host_state = {s.name: np.zeros(s.shape, dtype=np.float32) for s in self.meta.states}
        self.frames_seen = 0

    def step(self, frames: np.ndarray) -> np.ndarray:
        """Run the model on new frames and advance the state.

        Parameters
        ----------
        frames : float32 (T, C)
            New preprocessed frames at ``model_rate_hz`` (T may be 0).

        Returns
        -------
        y : float32 (T, K)
            One output row per input frame.
        """
        if self._sess is None or self.meta is None:
            raise ModelError(f"model {self.path} is not open", "call open() before step()")
        n = frames.shape[0]
        if n == 0:
            return np.zeros((0, len(self.meta.outputs)), dtype=np.float32)
        if n > self.max_frames:  # e.g. the TensorRT profile's maximum; streaming makes the split exact
            parts = [self.step(frames[a:a + self.max_frames]) for a in range(0, n, self.max_frames)]
            return np.concatenate(parts)
        x = np.ascontiguousarray(frames.T[None, :, :], dtype=np.float32)
        if self._bound is not None:
            y = self._bound.run(x)
        else:
            feeds = dict(self._host_state)
            feeds["x"] = x
            res = self._sess.run(self._out_names, feeds)
            for st, new in zip(self.meta.states, res[1:], strict=True):
                self._host_state[st.name] = new
            y = res[0]
        self.frames_seen += n
        return y[0].T

    def warm_up(self, runs: int = 20, frames: int | None = None, *, max_runs: int = 2000,
                max_s: float = 5.0, window: int = 10, tolerance: float = 0.1) -> float:
        """Run on zeros until the step time is stable, then reset. Returns the median step time, s.

        Parameters
        ----------
        runs : int
            At least this many steps (0: skip the warm-up).
        frames : int, optional
            Frames per step (default: ``cuda_graph_frames`` when set, else 1).
        max_runs, max_s, window, tolerance
            See :func:`rtdecode.runtime.warmup.warm_up_until_stable`.

        Notes
        -----
        The full report (runs, median, first-step time, stable) is kept in ``self.warmup``.
        """
        assert self.meta is not None, "open() first"
        n = frames if frames is not None else (self.cuda_graph_frames or 1)
        z = np.zeros((n, self.meta.model_channels), dtype=np.float32)
        self.warmup = warm_up_until_stable(lambda: self.step(z), min_runs=runs, window=window,
                                           tolerance=tolerance, max_runs=max_runs, max_s=max_s)
        self.reset()
        return self.warmup.median_s
