"""A stateful single-step ONNX model (the streaming-state contract of DESIGN.md).

Graph inputs ``x`` (float32 ``[1, C, T]``, T dynamic) and ``state_0 … state_k``;
outputs ``y`` (``[1, K, T]``) and ``state_0_out …``. The wrapper owns the state
between calls, so ``step`` on consecutive chunks equals one offline pass.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rtdecode.errors import ModelError
from rtdecode.runtime.metadata import ModelMetadata
from rtdecode.runtime.providers import choose_providers

logger = logging.getLogger(__name__)


def read_metadata(path: str | Path) -> ModelMetadata:
    """Read and validate the rtdecode metadata of an ONNX file without building kernels."""
    path = Path(path)
    sess = _load_session(path, ["CPUExecutionProvider"], threads=1)
    return ModelMetadata.from_props(sess.get_modelmeta().custom_metadata_map, str(path))


def _load_session(path: Path, providers: list[str], threads: int) -> ort.InferenceSession:
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
        raise ModelError(f"cannot load model {path}: {type(exc).__name__}: {exc}",
                         "the file is corrupt or not an ONNX model; rebuild it (make models)") from None


class StreamingModel:
    """A streaming ONNX decoder with explicit state.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    providers : list of str
        Execution-provider preference (short names: tensorrt, cuda, cpu).
    require_provider : bool
        Fail unless the first preference is available.
    threads : int
        Intra-op threads (0 = ONNX Runtime default).
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None, *,
                 require_provider: bool = False, threads: int = 1) -> None:
        self.path = Path(path)
        self.preference = providers or ["cpu"]
        self.require_provider = require_provider
        self.threads = threads
        self.meta: ModelMetadata | None = None
        self.provider: str | None = None
        self._sess: ort.InferenceSession | None = None
        self._state: dict[str, np.ndarray] = {}
        self._out_names: list[str] = []
        self.frames_seen = 0

    # -- lifecycle -------------------------------------------------------
    def open(self) -> StreamingModel:
        """Load the session, check the contract, allocate zero state."""
        providers = choose_providers(self.preference, require_first=self.require_provider)
        sess = _load_session(self.path, providers, self.threads)
        meta = ModelMetadata.from_props(sess.get_modelmeta().custom_metadata_map, str(self.path))
        self._check_contract(sess, meta)
        self._sess, self.meta = sess, meta
        self.provider = sess.get_providers()[0]
        self._out_names = ["y"] + [s.name + "_out" for s in meta.states]
        self.reset()
        logger.info("model %s (%s) on %s: %d ch @ %.6g Hz → %d outputs, receptive field %d frames",
                    meta.name, self.path.name, self.provider, meta.model_channels,
                    meta.model_rate_hz, len(meta.outputs), meta.receptive_field)
        return self

    def close(self) -> None:
        """Release the session (idempotent)."""
        self._sess = None

    def __enter__(self) -> StreamingModel:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def reset(self) -> None:
        """Zero all states (equals the front zero-padding of the offline model)."""
        assert self.meta is not None, "open() first"
        self._state = {s.name: np.zeros(s.shape, dtype=np.float32) for s in self.meta.states}
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
        feeds = dict(self._state)
        feeds["x"] = np.ascontiguousarray(frames.T[None, :, :], dtype=np.float32)
        res = self._sess.run(self._out_names, feeds)
        for st, new in zip(self.meta.states, res[1:], strict=True):
            self._state[st.name] = new
        self.frames_seen += n
        return res[0][0].T

    def warm_up(self, runs: int = 20, frames: int = 1) -> float:
        """Run on zeros ``runs`` times, then reset. Returns the median run time, s."""
        assert self.meta is not None, "open() first"
        z = np.zeros((frames, self.meta.model_channels), dtype=np.float32)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.step(z)
            times.append(time.perf_counter() - t0)
        self.reset()
        return float(np.median(times)) if times else 0.0
