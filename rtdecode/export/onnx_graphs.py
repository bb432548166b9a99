"""Write streaming ONNX graphs with the ``onnx`` helpers (no torch needed).

Needs the ``onnx`` package (extras ``export``, ``train`` or ``dev``); the daemon
itself only needs onnxruntime.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtdecode.errors import ModelError
from rtdecode.runtime.metadata import METADATA_KEY, ModelMetadata, StateSpec

logger = logging.getLogger(__name__)

OPSET = 17


def _onnx():  # noqa: ANN202
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ModuleNotFoundError as exc:
        raise ModelError("writing ONNX files needs the `onnx` package",
                         "pip install 'rtdecode[export]' (or [train])") from exc
    return onnx, helper, numpy_helper


def causal_conv_graph(W: np.ndarray, b: np.ndarray, meta: ModelMetadata, *,
                      softmax: bool = False) -> bytes:
    """Serialise a causal 1-D convolution (a multi-lag linear filter) as a streaming graph.

    Parameters
    ----------
    W : float32 (K, C, L)
        Conv weight, oldest lag first.
    b : float32 (K,)
    meta : ModelMetadata
        ``states`` and ``receptive_field`` are filled in here.
    softmax : bool
        End with a softmax over the K outputs (a linear classifier emitting class probabilities).

    Returns
    -------
    bytes
        The model, with ``meta`` under ``metadata_props["rtdecode"]``.
    """
    onnx, helper, numpy_helper = _onnx()
    k, c, lags = W.shape
    TP = onnx.TensorProto
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, [1, c, "T"])]
    outputs = [helper.make_tensor_value_info("y", TP.FLOAT, [1, k, "T"])]
    inits = [numpy_helper.from_array(np.ascontiguousarray(W, np.float32), "W"),
             numpy_helper.from_array(np.ascontiguousarray(b, np.float32), "b")]
    nodes = []
    states: list[StateSpec] = []
    y_lin = "logits" if softmax else "y"
    if lags > 1:
        shape = [1, c, lags - 1]
        states.append(StateSpec(name="state_0", shape=shape))
        inputs.append(helper.make_tensor_value_info("state_0", TP.FLOAT, shape))
        outputs.append(helper.make_tensor_value_info("state_0_out", TP.FLOAT, shape))
        inits += [numpy_helper.from_array(np.array([-(lags - 1)], np.int64), "keep_start"),
                  numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "keep_end"),
                  numpy_helper.from_array(np.array([2], np.int64), "time_axis")]
        nodes += [
            helper.make_node("Concat", ["state_0", "x"], ["xs"], axis=2),
            helper.make_node("Conv", ["xs", "W", "b"], [y_lin], kernel_shape=[lags]),
            helper.make_node("Slice", ["xs", "keep_start", "keep_end", "time_axis"], ["state_0_out"]),
        ]
    else:
        nodes.append(helper.make_node("Conv", ["x", "W", "b"], [y_lin], kernel_shape=[1]))
    if softmax:
        nodes.append(helper.make_node("Softmax", [y_lin], ["y"], axis=1))
    meta = meta.model_copy(update={"states": states, "receptive_field": lags})
    return finish_graph(nodes, meta.name, inputs, outputs, inits, meta)


def finish_graph(nodes: list, name: str, inputs: list, outputs: list, inits: list,
                 meta: ModelMetadata) -> bytes:
    """Assemble, tag with the rtdecode metadata, check and serialise a streaming graph."""
    onnx, helper, _ = _onnx()
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="rtdecode")
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_model(data: bytes, path: str | Path) -> Path:
    """Write serialized model bytes to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    logger.info("wrote %s (%d bytes)", path, len(data))
    return path


def rewrite_metadata(src: str | Path, meta: ModelMetadata, dst: str | Path) -> Path:
    """Copy a model file with new rtdecode metadata (same graph and weights).

    Parameters
    ----------
    src : path
        An rtdecode ``.onnx`` model.
    meta : ModelMetadata
        The metadata of the copy (e.g. a recalibrated preprocessing chain).
    dst : path
        Where the copy goes (may equal ``src``).
    """
    onnx, helper, _ = _onnx()
    proto = onnx.load(str(src))
    del proto.metadata_props[:]
    helper.set_model_props(proto, {METADATA_KEY: meta.to_json()})
    return write_model(proto.SerializeToString(), dst)
