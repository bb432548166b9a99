"""Export the shipped M2M-Net: one stateless ONNX graph, |E| volume → MEPs per head, + metadata.

The graph (:class:`rtdecode.nn.m2m.model.M2MNet`, traced with the TorchScript exporter, batch
dynamic) takes ``efield`` float32 (B, X, Y, Z) in V/m and returns ``mep_<head>`` float32 (B, k)
in µV for every head; the firing transform and every scaling are inside it. The metadata
(:class:`rtdecode.tms.m2m_model.M2mMetadata`) goes under ``metadata_props["rtdecode.m2m"]``;
the torch weights next to it as ``<stem>.torch.npz`` (arrays only, no pickle) so that
``rtdecode verify`` can compare torch and ONNX Runtime.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtdecode.errors import ModelError
from rtdecode.export.onnx_graphs import OPSET, write_model
from rtdecode.nn.m2m.model import Encoder, M2MNet, Mapper
from rtdecode.nn.m2m.protocol import Shipped
from rtdecode.nn.sidecar import sidecar_path
from rtdecode.runtime.bounds import ModelBounds, RangeStats
from rtdecode.tms.m2m_model import M2M_METADATA_KEY, M2mMetadata, M2mScaling
from rtdecode.tms.volume import VolumeConfig

logger = logging.getLogger(__name__)

__all__ = ["build_net", "export_m2m", "load_sidecar", "stimulus_bounds"]

#: Hidden activations of sidecars written before the spec named them.
_OLD_HIDDEN = {"direct": "relu", "synergy": "relu", "residual": "linear"}
#: Head order of the exported outputs.
EXPORT_HEADS = ("direct", "synergy", "both")


def build_net(spec: dict[str, Any], state: dict[str, torch.Tensor] | None = None) -> M2MNet:
    """An :class:`M2MNet` from its spec (and weights): the inverse of :func:`_spec`."""
    code = tuple(spec["code_shape"])
    members = []
    for _ in range(spec["members"]):
        mappers = {}
        for name, n_out in spec["mappers"].items():
            out = "tanh" if name == "residual" else "sigmoid"
            hidden = spec.get("hidden", _OLD_HIDDEN)[name]
            mappers[name] = Mapper(code, n_out, spec["depth"], out, hidden,  # type: ignore[arg-type]
                                   tuple(spec["mapper_channels"]), spec["dense"], spec["dropout"])
        members.append(mappers)
    k = spec["n_out"]
    scaling = {n: torch.zeros(k if n.startswith("out") else ()) for n in
               ("in_lo", "in_span", "code_lo", "code_span", "out_lo", "out_span")}
    net = M2MNet(Encoder(tuple(spec["encoder_channels"])), members,  # type: ignore[arg-type]
                 torch.zeros(spec["synergies"], k), scaling,
                 tuple(spec["firing"]) if spec["firing"] else None)
    if state is not None:
        net.load_state_dict(state)
    return net.eval()


def _spec(sh: Shipped, cfg_mapper: Any, vol: VolumeConfig) -> dict[str, Any]:
    return {"code_shape": list(sh.ae.codes.shape[1:]), "depth": sh.depth,
            "mappers": {n: m.n_out for n, m in sh.members[0].items()}, "members": len(sh.members),
            "mapper_channels": list(cfg_mapper.channels), "dense": cfg_mapper.dense,
            "dropout": cfg_mapper.dropout, "n_out": sh.targets.y.shape[1],
            "hidden": {n: m.hidden for n, m in sh.members[0].items()},
            "synergies": sh.targets.synergies.basis.shape[0],
            "encoder_channels": list(sh.ae.encoder.channels),
            "firing": [vol.firing.e50_v_m, vol.firing.slope_v_m] if sh.ae.kind == "firing" else None}


def _net(sh: Shipped, spec: dict[str, Any]) -> M2MNet:
    f32 = torch.float32
    ys, ps, cs = sh.targets.scale, sh.ae.prep.scale, sh.ae.code_scale
    values = {"in_lo": ps.lo, "in_span": ps.span, "code_lo": cs.lo, "code_span": cs.span,
              "out_lo": ys.lo, "out_span": ys.span}
    scaling = {k: torch.tensor(np.asarray(v, np.float64), dtype=f32) for k, v in values.items()}
    basis = torch.tensor(sh.targets.synergies.basis, dtype=f32)
    net = M2MNet(sh.ae.encoder, [dict(m) for m in sh.members], basis, scaling,
                 tuple(spec["firing"]) if spec["firing"] else None)
    return net.eval()


def load_sidecar(path: str | Path) -> M2MNet:
    """The torch model saved next to an exported ``.onnx`` (``<stem>.torch.npz``)."""
    side = sidecar_path(path)
    if not side.exists():
        raise ModelError(f"no torch sidecar {side}", "export again with `rtdecode m2m train`")
    with np.load(side, allow_pickle=False) as z:
        spec = json.loads(str(z["__spec__"]))
        state = {k: torch.from_numpy(z[k].copy()) for k in z.files if k != "__spec__"}
    return build_net(spec, state)


def export_m2m(sh: Shipped, path: str | Path, *, name: str, volume: VolumeConfig, cfg_mapper: Any,
               muscles: list[str], bounds: ModelBounds, provenance: dict[str, Any],
               metrics: dict[str, Any], primary: str = "both") -> Path:
    """Write the ONNX graph with its metadata and the torch sidecar; returns the path."""
    import onnx

    spec = _spec(sh, cfg_mapper, volume)
    net = _net(sh, spec)
    vol = volume.model_copy(update={"kind": sh.ae.kind})
    ys = sh.targets.scale
    meta = M2mMetadata(name=name, muscles=list(muscles), heads=list(net.heads), primary=primary, volume=vol,
                       scaling=M2mScaling(input=(float(sh.ae.prep.scale.lo), float(sh.ae.prep.scale.hi)),
                                          code=(float(sh.ae.code_scale.lo), float(sh.ae.code_scale.hi)),
                                          output_lo=np.asarray(ys.lo).tolist(),
                                          output_hi=np.asarray(ys.hi).tolist()),
                       synergy_basis=sh.targets.synergies.basis.tolist(), bounds=bounds,
                       provenance=provenance, metrics=metrics)
    x = torch.zeros(1, *volume.shape)
    outs = [f"mep_{h}" for h in net.heads]
    with tempfile.TemporaryDirectory(prefix="rtdecode-m2m-") as tmp:
        traced = Path(tmp) / "m2m.onnx"
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(net, (x,), str(traced), input_names=["efield"],
                                  output_names=outs,
                                  dynamic_axes={n: {0: "B"} for n in ["efield", *outs]},
                                  opset_version=OPSET, dynamo=False, do_constant_folding=True)
        except Exception as exc:  # torch raises many types here
            raise ModelError(f"torch.onnx.export of M2M-Net failed: {type(exc).__name__}: {exc}",
                             "report this as a bug") from exc
        proto = onnx.load(str(traced))
    proto.producer_name = "rtdecode"
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {M2M_METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(proto)
    out = write_model(proto.SerializeToString(), path)
    arrays = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    np.savez(sidecar_path(out), __spec__=np.array(json.dumps(spec)), **arrays)
    logger.info("exported M2M-Net (%s input, %d-layer mapper, heads %s) to %s", sh.ae.kind, sh.depth,
                net.heads, out)
    return out


def stimulus_bounds(features: np.ndarray, mep_uv: np.ndarray, predictions: np.ndarray,
                    data: str) -> ModelBounds:
    """Training ranges: stimulus features (N, 10) in; MEPs (targets and predictions, µV) out."""
    return ModelBounds(input=RangeStats.of(features), output=RangeStats.of([mep_uv, predictions]), data=data)
