"""Streaming ONNX graphs of the classic decoders and of the ANN fusion network.

Every graph follows the streaming-state contract of docs/architecture.md (input ``x`` float32
``[1, C, T]`` with T dynamic, output ``y`` ``[1, K, T]``, one ``state_k`` / ``state_k_out``
pair per piece of state, :class:`~rtdecode.runtime.metadata.ModelMetadata` under
``metadata_props["rtdecode"]``), so the daemon serves them with
:class:`~rtdecode.runtime.streaming.StreamingModel` unchanged.

* Wiener filter and population vector: a causal convolution
  (:func:`rtdecode.export.onnx_graphs.causal_conv_graph`; state = the last ``L − 1`` frames).
* Kalman decoder (steady-state gain): ``u = K∞ z + g`` for all frames at once (``MatMul``),
  then the recursion ``x̂_t = M x̂_{t-1} + u_t`` with a ``Scan`` over time; state = ``x̂``
  (``state_0`` ``[1, d]``, stored as the deviation from the initial state ``x0`` so that the
  zero state is the decoder's reset state).
* ANN fusion: two kernel-1 convolutions with a ``Tanh`` between them (stateless).
* Time-domain features → LDA / ridge (:class:`~rtdecode.decoders.td.TDDecoder`): the
  per-sample quantities (``|x|``, ``|Δx|``, zero crossings, slope sign changes, ``x²``) over
  ``[state, x]``, window sums as one depthwise ``Conv`` of ones, then a kernel-1 ``Conv`` (and
  ``Softmax`` for the LDA); state = the last ``W + 1`` input samples (:func:`td_decoder_graph`).

Only standard opset-17 operators are used.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.decoders.base import StreamingDecoder
from rtdecode.decoders.fir import CausalLinearDecoder
from rtdecode.decoders.kalman import KalmanDecoder
from rtdecode.decoders.td import TDDecoder
from rtdecode.errors import ModelError
from rtdecode.export.onnx_graphs import _onnx, causal_conv_graph, finish_graph
from rtdecode.runtime.bounds import ModelBounds
from rtdecode.runtime.metadata import ModelMetadata, OutputSpec, StateSpec

logger = logging.getLogger(__name__)

__all__ = ["decoder_graph", "decoder_metadata", "kalman_decoder_graph", "linear_decoder_graph",
           "mlp_graph", "td_decoder_graph"]


def decoder_metadata(decoder: StreamingDecoder, *, name: str, rate_hz: float,
                     output_names: list[str], output_units: list[str] | None = None,
                     channels: int | None = None, preprocessing: list[dict] | None = None,
                     model_rate_hz: float | None = None, input_unit: str = "",
                     provenance: dict | None = None, metrics: dict | None = None,
                     bounds: ModelBounds | None = None) -> ModelMetadata:
    """Metadata for a fitted decoder (states and receptive field are filled in by the writers).

    Parameters
    ----------
    decoder : StreamingDecoder
        A fitted decoder (its ``n_inputs`` / ``n_outputs`` set the model channels / outputs).
    name : str
        Model name.
    rate_hz : float
        Rate of the input stream, Hz (before ``preprocessing``).
    output_names, output_units : list of str
        One per decoder output.
    channels : int, optional
        Input stream channels (default: the decoder's inputs, i.e. no channel-changing chain).
    preprocessing : list of dict, optional
        Chain specs (:func:`rtdecode.dsp.build_chain`) that turn the stream into the frames
        the decoder was fitted on.
    model_rate_hz : float, optional
        Frame rate after the chain, Hz (default ``rate_hz``).
    bounds : ModelBounds, optional
        Training ranges of the raw inputs and the outputs (:mod:`rtdecode.runtime.bounds`).
    """
    if len(output_names) != decoder.n_outputs:
        raise ModelError(f"{len(output_names)} output names for {decoder.n_outputs} decoder outputs",
                         "give one name per output")
    units = output_units or [""] * decoder.n_outputs
    return ModelMetadata(
        name=name, rate_hz=rate_hz, channels=channels or decoder.n_inputs, input_unit=input_unit,
        preprocessing=list(preprocessing or []), model_rate_hz=model_rate_hz or rate_hz,
        model_channels=decoder.n_inputs,
        outputs=[OutputSpec(name=n, unit=u) for n, u in zip(output_names, units, strict=True)],
        receptive_field=1, delay=0, provenance={"decoder": decoder.describe(), **(provenance or {})},
        metrics=dict(metrics or {}), bounds=bounds,
    )


def _finish(helper, onnx, nodes, name, inputs, outputs, inits, meta: ModelMetadata) -> bytes:  # noqa: ANN001
    return finish_graph(nodes, name, inputs, outputs, inits, meta)


def linear_decoder_graph(decoder: CausalLinearDecoder, meta: ModelMetadata) -> bytes:
    """Wiener / population-vector decoder as a causal convolution (see module docstring)."""
    decoder._require_fitted()
    return causal_conv_graph(decoder.W.astype(np.float32), decoder.b.astype(np.float32), meta)


def kalman_decoder_graph(decoder: KalmanDecoder, meta: ModelMetadata) -> bytes:
    """Steady-state Kalman decoder as a ``MatMul`` + ``Scan`` graph with state ``[1, d]``.

    With ``s_t = x̂_t − x0``: ``s_t = M s_{t-1} + (K∞ z_t + g + M x0 − x0)``, ``y_t = s_t + x0``,
    so the zero state equals :meth:`KalmanDecoder.reset`.

    Parameters
    ----------
    decoder : KalmanDecoder
        Fitted, ``steady_state=True``.
    meta : ModelMetadata
        ``states`` and ``receptive_field`` are filled in here.
    """
    decoder._require_fitted()
    if not decoder.steady_state:
        raise ModelError("only the steady-state Kalman decoder has a fixed-size ONNX graph",
                         "export KalmanDecoder(steady_state=True)")
    assert decoder.model is not None
    onnx, helper, numpy_helper = _onnx()
    TP = onnx.TensorProto
    d, c = decoder.n_outputs, decoder.n_inputs
    x0 = decoder.model.x0
    e = decoder.g + decoder.M @ x0 - x0
    f32 = np.float32

    # Scan body: s_prev [1, d], u_t [d] -> s_new [1, d] (state) and a copy (scan output)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["s_prev", "Mt"], ["ms"]),
         helper.make_node("Add", ["ms", "u_t"], ["s_new"]),
         helper.make_node("Identity", ["s_new"], ["s_scan"])],
        "kalman_step",
        [helper.make_tensor_value_info("s_prev", TP.FLOAT, [1, d]),
         helper.make_tensor_value_info("u_t", TP.FLOAT, [d])],
        [helper.make_tensor_value_info("s_new", TP.FLOAT, [1, d]),
         helper.make_tensor_value_info("s_scan", TP.FLOAT, [1, d])],
    )
    inits = [
        numpy_helper.from_array(np.ascontiguousarray(decoder.M.T, f32), "Mt"),
        numpy_helper.from_array(np.ascontiguousarray(decoder.K_inf.T, f32), "Kt"),
        numpy_helper.from_array(np.ascontiguousarray(e, f32), "e"),
        numpy_helper.from_array(np.ascontiguousarray(x0, f32), "x0"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([-1, d], np.int64), "shape_td"),
    ]
    nodes = [
        helper.make_node("Squeeze", ["x", "axis0"], ["x_ct"]),                 # [C, T]
        helper.make_node("Transpose", ["x_ct"], ["x_tc"], perm=[1, 0]),       # [T, C]
        helper.make_node("MatMul", ["x_tc", "Kt"], ["kz"]),                    # [T, d]
        helper.make_node("Add", ["kz", "e"], ["u"]),                           # [T, d]
        helper.make_node("Scan", ["state_0", "u"], ["state_0_out", "s_seq"], body=body,
                         num_scan_inputs=1),                                   # s_seq [T, 1, d]
        helper.make_node("Reshape", ["s_seq", "shape_td"], ["s_td"]),          # [T, d]
        helper.make_node("Add", ["s_td", "x0"], ["y_td"]),
        helper.make_node("Transpose", ["y_td"], ["y_dt"], perm=[1, 0]),        # [d, T]
        helper.make_node("Unsqueeze", ["y_dt", "axis0"], ["y"]),               # [1, d, T]
    ]
    shape = [1, d]
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, [1, c, "T"]),
              helper.make_tensor_value_info("state_0", TP.FLOAT, shape)]
    outputs = [helper.make_tensor_value_info("y", TP.FLOAT, [1, d, "T"]),
               helper.make_tensor_value_info("state_0_out", TP.FLOAT, shape)]
    meta = meta.model_copy(update={"states": [StateSpec(name="state_0", shape=shape)],
                                   "receptive_field": decoder.receptive_field()})
    return _finish(helper, onnx, nodes, meta.name, inputs, outputs, inits, meta)


def _td_quantities(helper, decoder: TDDecoder) -> tuple[list, list[str]]:  # noqa: ANN001
    """Nodes computing each feature's per-sample quantity over positions 2.. of ``xs``.

    ``cur``, ``prev``, ``prev2`` are ``xs`` from position 2, 1 and 0 (same length), so at
    each position the sample, its predecessor and the one before that.
    """
    mk = helper.make_node
    nodes = [mk("Sub", ["cur", "prev"], ["d"]), mk("Abs", ["d"], ["absd"])]
    names = []
    for f in decoder.features:
        if f == "mav":
            nodes.append(mk("Abs", ["cur"], ["q_mav"]))
        elif f == "wl":
            nodes.append(mk("Identity", ["absd"], ["q_wl"]))
        elif f == "zc":
            nodes += [mk("Mul", ["cur", "prev"], ["zc_p"]), mk("Less", ["zc_p", "zero"], ["zc_s"]),
                      mk("GreaterOrEqual", ["absd", "thr"], ["zc_t"]), mk("And", ["zc_s", "zc_t"], ["zc_b"]),
                      mk("Cast", ["zc_b"], ["q_zc"], to=1)]
        elif f == "ssc":
            nodes += [mk("Sub", ["prev", "prev2"], ["ss_l"]), mk("Sub", ["prev", "cur"], ["ss_r"]),
                      mk("Mul", ["ss_l", "ss_r"], ["ss_p"]), mk("Greater", ["ss_p", "zero"], ["ss_s"]),
                      mk("Abs", ["ss_l"], ["ss_al"]), mk("Abs", ["ss_r"], ["ss_ar"]),
                      mk("GreaterOrEqual", ["ss_al", "thr"], ["ss_tl"]),
                      mk("GreaterOrEqual", ["ss_ar", "thr"], ["ss_tr"]),
                      mk("Or", ["ss_tl", "ss_tr"], ["ss_t"]),
                      mk("And", ["ss_s", "ss_t"], ["ss_b"]), mk("Cast", ["ss_b"], ["q_ssc"], to=1)]
        else:
            nodes.append(mk("Mul", ["cur", "cur"], ["q_rms"]))
        names.append(f"q_{f}")
    return nodes, names


def td_decoder_graph(decoder: TDDecoder, meta: ModelMetadata) -> bytes:
    """Time-domain features → LDA / ridge as a streaming graph with state ``[1, C, W + 1]``.

    ``xs = [state, x]`` holds ``W + 1 + T`` samples; the window ending at new sample ``t``
    covers positions ``t + 2 … t + W + 1`` of ``xs`` and looks back two more (SSC), so a
    depthwise window-sum ``Conv`` over positions 2.. gives exactly ``T`` outputs, and
    the zero state equals :meth:`TDDecoder.reset` (``td_features(..., zero_history=True)``).
    """
    decoder._require_fitted()
    onnx, helper, numpy_helper = _onnx()
    TP, f32, i64 = onnx.TensorProto, np.float32, np.int64
    c, w, n_f, k = decoder.n_inputs, decoder.window, len(decoder.features), decoder.n_outputs
    scale = np.ones(n_f * c, f32)
    for j, f in enumerate(decoder.features):
        if f in ("mav", "rms"):
            scale[j * c:(j + 1) * c] = 1.0 / w
    arr = numpy_helper.from_array
    inits = [arr(np.array(v, i64), n) for n, v in (("p0", [0]), ("p1", [1]), ("p2", [2]), ("m1", [-1]),
                                                   ("m2", [-2]), ("keep", [-(w + 1)]), ("axis2", [2]),
                                                   ("end", [np.iinfo(np.int64).max]))]
    inits += [arr(np.zeros(1, f32), "zero"), arr(np.full(1, decoder.threshold, f32), "thr"),
              arr(np.ones((n_f * c, 1, w), f32), "ones"), arr(scale[None, :, None], "scale"),
              arr(np.ascontiguousarray(decoder.W[:, :, None], f32), "Wh"), arr(decoder.b.astype(f32), "bh")]
    mk = helper.make_node
    nodes = [mk("Concat", ["state_0", "x"], ["xs"], axis=2),
             mk("Slice", ["xs", "p2", "end", "axis2"], ["cur"]),
             mk("Slice", ["xs", "p1", "m1", "axis2"], ["prev"]),
             mk("Slice", ["xs", "p0", "m2", "axis2"], ["prev2"]),
             mk("Slice", ["xs", "keep", "end", "axis2"], ["state_0_out"])]
    q_nodes, q_names = _td_quantities(helper, decoder)
    nodes += q_nodes + [mk("Concat", q_names, ["q"], axis=1),
                        mk("Conv", ["q", "ones"], ["sums"], kernel_shape=[w], group=n_f * c),
                        mk("Mul", ["sums", "scale"], ["feats_lin"])]
    feats = "feats_lin"
    if "rms" in decoder.features:  # always the last block
        inits += [arr(np.array([(n_f - 1) * c], i64), "rms0"), arr(np.array([1], i64), "axis1")]
        nodes += [mk("Slice", ["feats_lin", "p0", "rms0", "axis1"], ["f_head"]),
                  mk("Slice", ["feats_lin", "rms0", "end", "axis1"], ["f_ms"]),
                  mk("Sqrt", ["f_ms"], ["f_rms"]),
                  mk("Concat", ["f_head", "f_rms"], ["feats"], axis=1)]
        feats = "feats"
    head_out = "logits" if decoder.head == "lda" else "y"
    nodes.append(mk("Conv", [feats, "Wh", "bh"], [head_out], kernel_shape=[1]))
    if decoder.head == "lda":
        nodes.append(mk("Softmax", ["logits"], ["y"], axis=1))
    shape = [1, c, w + 1]
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, [1, c, "T"]),
              helper.make_tensor_value_info("state_0", TP.FLOAT, shape)]
    outputs = [helper.make_tensor_value_info("y", TP.FLOAT, [1, k, "T"]),
               helper.make_tensor_value_info("state_0_out", TP.FLOAT, shape)]
    meta = meta.model_copy(update={"states": [StateSpec(name="state_0", shape=shape)],
                                   "receptive_field": w + 2})
    return finish_graph(nodes, meta.name, inputs, outputs, inits, meta)


def decoder_graph(decoder: StreamingDecoder, meta: ModelMetadata) -> bytes:
    """The streaming ONNX graph of any classic decoder (dispatch on its type)."""
    if isinstance(decoder, TDDecoder):
        return td_decoder_graph(decoder, meta)
    if isinstance(decoder, KalmanDecoder):
        return kalman_decoder_graph(decoder, meta)
    if isinstance(decoder, CausalLinearDecoder):
        return linear_decoder_graph(decoder, meta)
    raise ModelError(f"no ONNX writer for {type(decoder).__name__}",
                     "use KalmanDecoder, WienerDecoder, PopulationVectorDecoder or TDDecoder")


def mlp_graph(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray,
              meta: ModelMetadata) -> bytes:
    """A one-hidden-layer tanh network applied to every frame: ``y = W2 tanh(W1 x + b1) + b2``.

    Parameters
    ----------
    W1 : float (h, p)
    b1 : float (h,)
    W2 : float (K, h)
    b2 : float (K,)
    meta : ModelMetadata
        Stateless: ``states`` is set to ``[]`` and ``receptive_field`` to 1.

    Returns
    -------
    bytes
        ``x`` ``[1, p, T]`` → ``y`` ``[1, K, T]`` (two kernel-1 ``Conv`` and a ``Tanh``).
    """
    onnx, helper, numpy_helper = _onnx()
    TP = onnx.TensorProto
    h, p = W1.shape
    k = W2.shape[0]
    f32 = np.float32
    inits = [numpy_helper.from_array(np.ascontiguousarray(W1[:, :, None], f32), "W1"),
             numpy_helper.from_array(np.ascontiguousarray(b1, f32), "b1"),
             numpy_helper.from_array(np.ascontiguousarray(W2[:, :, None], f32), "W2"),
             numpy_helper.from_array(np.ascontiguousarray(b2, f32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "W1", "b1"], ["a1"], kernel_shape=[1]),
             helper.make_node("Tanh", ["a1"], ["h1"]),
             helper.make_node("Conv", ["h1", "W2", "b2"], ["y"], kernel_shape=[1])]
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, [1, p, "T"])]
    outputs = [helper.make_tensor_value_info("y", TP.FLOAT, [1, k, "T"])]
    meta = meta.model_copy(update={"states": [], "receptive_field": 1})
    return _finish(helper, onnx, nodes, meta.name, inputs, outputs, inits, meta)
