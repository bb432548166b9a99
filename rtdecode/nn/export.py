"""Export a torch model as a single-step streaming ONNX graph (the state contract of docs/architecture.md).

The exported graph is ``(x [1, C, T], state_0 … state_k) → (y [1, K, T], state_0_out …)``:
the model's pure ``step`` traced with the TorchScript exporter, Gamma kernels replaced by
their materialised plain ``Conv`` weights (standard ONNX operators only), classifiers
ending in a softmax. The rtdecode metadata (rates, channels, preprocessing chain, states,
receptive field, provenance, metrics) is written under ``metadata_props["rtdecode"]``, and
the torch model is saved next to it as ``<stem>.torch.npz`` so ``rtdecode verify`` can
compare the ONNX graph with the original torch model.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rtdecode.dsp import build_chain
from rtdecode.errors import ModelError
from rtdecode.export.onnx_graphs import OPSET, write_model
from rtdecode.nn.checkpoint import load_checkpoint, save_checkpoint
from rtdecode.nn.datasets import TrainingData
from rtdecode.nn.gamma import GammaConv1d
from rtdecode.nn.layers import StreamingModule
from rtdecode.nn.models import model_to_spec, streaming_core
from rtdecode.nn.sidecar import sidecar_path
from rtdecode.runtime.bounds import ModelBounds, RangeStats, model_bounds, probability_range
from rtdecode.runtime.metadata import METADATA_KEY, ModelMetadata, OutputSpec, StateSpec

logger = logging.getLogger(__name__)

__all__ = ["EXPORT_FIELDS", "export_checkpoint", "export_streaming", "materialized", "sidecar_path",
           "training_bounds"]

#: Keyword arguments of :func:`export_streaming` that a checkpoint's ``extra`` may carry.
EXPORT_FIELDS = ("name", "rate_hz", "channels", "preprocessing", "outputs", "task", "session",
                 "classifier_probabilities", "provenance", "metrics", "channel_names", "grid_shape",
                 "input_unit", "bounds")
_REQUIRED = ("rate_hz", "channels", "outputs")
#: Operator domains allowed in an exported graph (the standard ONNX operator set).
STANDARD_DOMAINS = ("", "ai.onnx")


def materialized(core: StreamingModule) -> StreamingModule:
    """A copy of ``core`` with every :class:`GammaConv1d` replaced by a plain causal conv."""
    out = copy.deepcopy(core)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, GammaConv1d):
                parent._modules[name] = child.to_causal_conv()
    return out


class _StepGraph(nn.Module):
    """``forward(x, *states) = (y, *next_states)``: what the ONNX graph computes."""

    def __init__(self, core: StreamingModule, softmax: bool) -> None:
        super().__init__()
        self.core = core
        self.softmax = softmax

    def forward(self, x: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        y, new = self.core.step(x, list(states))
        if self.softmax:
            y = torch.softmax(y, dim=1)
        return (y, *new)


def _outputs(outputs: Sequence[OutputSpec | dict[str, Any] | str]) -> list[OutputSpec]:
    out = []
    for o in outputs:
        if isinstance(o, OutputSpec):
            out.append(o)
        elif isinstance(o, str):
            out.append(OutputSpec(name=o))
        else:
            out.append(OutputSpec.model_validate(o))
    return out


def export_streaming(model: nn.Module, path: str | Path, *, rate_hz: float, channels: int,
                     preprocessing: list[dict[str, Any]],
                     outputs: Sequence[OutputSpec | dict[str, Any] | str],
                     task: Literal["regression", "classification"] = "regression", session: int = 0,
                     classifier_probabilities: bool = True,
                     provenance: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                     channel_names: list[str] | None = None, grid_shape: Sequence[int] | None = None,
                     opset: int = OPSET, name: str | None = None, input_unit: str = "",
                     bounds: ModelBounds | dict[str, Any] | None = None,
                     write_sidecar: bool = True) -> Path:
    """Export ``model`` as a streaming ONNX model with rtdecode metadata.

    Parameters
    ----------
    model : nn.Module
        An rtdecode.nn model (GammaCNN, LinearDecoder, SConvNet, AllConvNet) or any
        :class:`StreamingModule`.
    path : path
        The ``.onnx`` file to write.
    rate_hz : float
        Rate of the input stream (before preprocessing), Hz.
    channels : int
        Channels of the input stream.
    preprocessing : list of dict
        The stage specs the model was trained with; ``build_chain(preprocessing, rate_hz,
        channels)`` must output the model's input channels.
    outputs : list of OutputSpec, dict or str
        One per output channel of ``y`` (class names for a classifier).
    task : {"regression", "classification"}
    session : int
        GammaCNN feature stack to export.
    classifier_probabilities : bool
        For ``task="classification"``, end with a softmax so ``y`` holds class probabilities.
    provenance, metrics : dict, optional
        Training-data provenance and held-out metrics for the metadata.
    channel_names : list of str, optional
        One per input channel.
    grid_shape : (int, int), optional
        Electrode grid (default: the chain's ``grid`` stage, else the model's grid).
    opset : int
        ONNX opset.
    bounds : ModelBounds or dict, optional
        Training ranges of the raw inputs and the outputs
        (:func:`rtdecode.runtime.bounds.model_bounds`); the daemon's plausibility limits.
        Without them the model gets finite-only output checks and a warning at load.
    name : str, optional
        Model name (default: the file stem).
    input_unit : str
        Unit of the input stream (e.g. "mV").
    write_sidecar : bool
        Also write the torch checkpoint ``<stem>.torch.npz`` (used by ``rtdecode verify``).

    Returns
    -------
    Path
        The ONNX file.

    Raises
    ------
    ModelError
        If the model does not fit the chain or the outputs, or export fails.
    ConfigError, StageError
        If the preprocessing chain is invalid for the stream.
    """
    path = Path(path)
    if task not in ("regression", "classification"):
        raise ModelError(f"task must be 'regression' or 'classification', got {task!r}", "fix task")
    chain = build_chain(preprocessing, float(rate_hz), int(channels))
    core = streaming_core(model, session)
    if core.in_channels != chain.n_out:
        raise ModelError(f"the model takes {core.in_channels} channels but the preprocessing chain "
                         f"outputs {chain.n_out} ({chain!r})",
                         "export with the chain the model was trained with")
    outs = _outputs(outputs)
    if len(outs) != core.out_channels:
        raise ModelError(f"{len(outs)} output names for a model with {core.out_channels} outputs",
                         "give one OutputSpec per output channel (class names for a classifier)")
    if grid_shape is None:
        grid_shape = chain.grid_shape or getattr(core, "grid_shape", None)
    shapes = core.state_shapes(1)
    states = [StateSpec(name=f"state_{i}", shape=list(s)) for i, s in enumerate(shapes)]
    meta = ModelMetadata(
        name=name or path.stem, task=task, rate_hz=float(rate_hz), channels=int(channels),
        channel_names=list(channel_names or []), input_unit=input_unit,
        grid_shape=list(grid_shape) if grid_shape is not None else None,
        preprocessing=chain.specs, model_rate_hz=chain.rate_out_hz, model_channels=chain.n_out,
        outputs=outs, receptive_field=core.receptive_field, delay=core.delay, states=states,
        provenance=dict(provenance or {}), metrics=dict(metrics or {}),
        bounds=ModelBounds.model_validate(bounds) if isinstance(bounds, dict) else bounds,
    )
    softmax = task == "classification" and classifier_probabilities
    graph = _StepGraph(materialized(core), softmax).eval().float().cpu()
    proto = _traced_step(graph, core.in_channels, shapes, [s.name for s in states], int(opset),
                         type(model).__name__)
    write_model(_with_metadata(proto, meta), path)

    from rtdecode.runtime.streaming import StreamingModel

    with StreamingModel(path):  # the daemon's contract checks
        pass
    if write_sidecar:
        extra = {
            "name": meta.name, "rate_hz": meta.rate_hz, "channels": meta.channels,
            "preprocessing": meta.preprocessing, "outputs": [o.model_dump() for o in outs],
            "task": task, "session": int(session), "classifier_probabilities": bool(classifier_probabilities),
            "provenance": meta.provenance, "metrics": meta.metrics, "channel_names": meta.channel_names,
            "grid_shape": meta.grid_shape, "input_unit": input_unit,
            "bounds": meta.bounds.model_dump() if meta.bounds is not None else None,
        }
        save_checkpoint(sidecar_path(path), model, model_to_spec(model), extra)
    logger.info("exported %s: %s, %d ch @ %g Hz → %d outputs, receptive field %d, %d states",
                path, type(model).__name__, meta.model_channels, meta.model_rate_hz, len(outs),
                meta.receptive_field, len(states))
    return path


def _traced_step(graph: nn.Module, in_channels: int, shapes: Sequence[Sequence[int]],
                 state_names: list[str], opset: int, what: str) -> Any:
    """One step of ``graph`` traced to an ONNX ``ModelProto``: inputs x (1, C, T dynamic) and the
    states (fixed shapes), outputs y (1, K, T) and the next states (``<name>_out``)."""
    import onnx

    x = torch.zeros(1, in_channels, 5)  # values do not matter for tracing
    zs = [torch.zeros(s) for s in shapes]
    in_names = ["x", *state_names]
    out_names = ["y"] + [n + "_out" for n in state_names]
    with tempfile.TemporaryDirectory(prefix="rtdecode-export-") as tmp:
        traced = Path(tmp) / "traced.onnx"
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", category=DeprecationWarning)
                # GRU / LSTM: the hidden state is a graph input and the batch is 1, as it asks
                warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning,
                                        module="torch.nn.modules.rnn")
                # TorchScript-based exporter: a traced single step, T dynamic, states fixed
                torch.onnx.export(graph, (x, *zs), str(traced), input_names=in_names,
                                  output_names=out_names, dynamic_axes={"x": {2: "T"}, "y": {2: "T"}},
                                  opset_version=opset, dynamo=False, do_constant_folding=True)
        except Exception as exc:  # torch raises many types here; report them as one model error
            raise ModelError(f"torch.onnx.export failed for {what}: {type(exc).__name__}: {exc}",
                             "check the model runs in eval mode on (1, C, T) input") from exc
        return onnx.load(str(traced))


def _with_metadata(proto: Any, meta: ModelMetadata) -> bytes:
    """The traced graph checked (standard operators, onnx.checker) with rtdecode's metadata, serialised."""
    import onnx

    custom = sorted({n.domain for n in proto.graph.node if n.domain not in STANDARD_DOMAINS})
    if custom:
        raise ModelError(f"exported graph uses non-standard operator domains {custom}",
                         "replace custom layers with standard ops before export")
    proto.producer_name = "rtdecode"
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {METADATA_KEY: meta.to_json()})
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"exported graph fails onnx.checker: {exc}", "report this as a bug") from None
    return proto.SerializeToString()


def training_bounds(model: nn.Module, data: TrainingData) -> ModelBounds:
    """The plausibility bounds of a fitted model over its training data.

    Inputs: every raw channel of ``data.recordings`` (stream units). Outputs: a classifier's
    probabilities are bounded by [0, 1]; a regression's range covers the targets and the model's
    own offline predictions on every segment (output units).
    """
    inputs = [r.x for r in data.recordings]
    where = f"{len(inputs)} training recordings ({data.provenance.get('data', 'training data')})"
    if data.task == "classification":
        return ModelBounds(input=RangeStats.of(inputs), output=probability_range(data.n_outputs),
                           data=where)
    model.eval()
    preds = []
    with torch.no_grad():
        for s in data.segments:
            y = model(torch.from_numpy(np.ascontiguousarray(s.x.T[None], dtype=np.float32)))
            preds.append(y[0].numpy().T)
    return model_bounds(inputs, [s.y for s in data.segments] + preds, data=where)


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, opset: int = OPSET,
                      overrides: dict[str, Any] | None = None) -> Path:
    """Export a checkpoint whose ``extra`` holds :data:`EXPORT_FIELDS`.

    Parameters
    ----------
    checkpoint : path
        ``.npz`` from :func:`~rtdecode.nn.checkpoint.save_checkpoint` (a training run or an
        export sidecar).
    out : path
        The ``.onnx`` file to write (its sidecar is written next to it).
    opset : int
        ONNX opset.
    overrides : dict, optional
        Export fields that replace the checkpoint's (e.g. ``{"session": 1}``).

    Raises
    ------
    ModelError
        If the checkpoint lacks a required field (rate_hz, channels, outputs).
    """
    model, _spec, extra = load_checkpoint(checkpoint)
    fields = {k: extra[k] for k in EXPORT_FIELDS if extra.get(k) is not None}
    fields.update(overrides or {})
    missing = [k for k in _REQUIRED if k not in fields]
    if missing:
        raise ModelError(f"checkpoint {checkpoint} lacks the export fields {missing} in its 'extra'",
                         f"save it with extra={{'rate_hz': ..., 'channels': ..., 'outputs': [...], "
                         f"'preprocessing': [...]}} (fields: {', '.join(EXPORT_FIELDS)})")
    fields.setdefault("preprocessing", [])
    return export_streaming(model, out, opset=opset, **fields)
