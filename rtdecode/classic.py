"""The classic baseline of a model, fitted on labelled recordings and written as a model file.

Used by ``rtdecode evaluate`` (the baseline fitted on the model's own training data, scored
beside it), ``rtdecode calibrate`` (the refit of a classic model on a calibration recording)
and ``rtdecode train`` (the exported LDA). Numpy and onnx only; no torch.

- classification: :class:`~rtdecode.decoders.td.TDDecoder` — time-domain features of the
  model chain's filter stages over ``window_s`` → LDA;
- regression: :class:`~rtdecode.decoders.wiener.WienerDecoder` — a ridge filter over
  ``history_s`` of the model chain's frames (what the model itself sees).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.decoders.base import StreamingDecoder
from rtdecode.decoders.td import TDDecoder
from rtdecode.decoders.wiener import WienerDecoder
from rtdecode.dsp import build_chain
from rtdecode.dsp.td import HUDGINS
from rtdecode.errors import DataError, ModelError
from rtdecode.io.labelled import LabelledSet
from rtdecode.io.recording import Recording
from rtdecode.runtime.bounds import ModelBounds, RangeStats, model_bounds, probability_range
from rtdecode.runtime.metadata import ModelMetadata

logger = logging.getLogger(__name__)

__all__ = ["BaselineSettings", "decoder_bounds", "filter_stages", "fit_baseline", "fit_td", "fit_td_lda",
           "fit_wiener_frames", "refit_decoder", "stream_of", "write_decoder"]

#: Chain stages that keep the sample rate and channel layout (the LDA's front end).
_FILTERS = ("butter",)


def filter_stages(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The causal filter stages of a chain (what the classic EMG decoder runs on)."""
    return [dict(s) for s in chain if s.get("kind") in _FILTERS]


class BaselineSettings(dict):  # type: ignore[type-arg]
    """``window_s``, ``threshold``, ``features``, ``stride`` (LDA); ``history_s``, ``ridge`` (Wiener)."""

    @classmethod
    def of(cls, meta: ModelMetadata, **override: Any) -> BaselineSettings:
        """Defaults, then what the model's provenance records (``baseline``), then ``override``."""
        out = cls(window_s=0.2, threshold=0.0, features=list(HUDGINS), stride=5, history_s=0.3, ridge=1e-3)
        out.update(meta.provenance.get("baseline") or {})
        out.update({k: v for k, v in override.items() if v is not None})
        return out


def _filtered(chain: list[dict[str, Any]], ls: LabelledSet) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Filtered samples, labels, recording index and trial id of every sample, concatenated."""
    xs, ys, seg, tr = [], [], [], []
    for i, (rec, trial) in enumerate(zip(ls.recordings, ls.trials, strict=True)):
        if rec.y is None:
            raise DataError(f"{rec.meta.get('file')} has no labels",
                            "label the recording (markers or a label column)")
        xf, _ = build_chain(chain, rec.fs, rec.n_channels).process(rec.x, np.asarray(rec.t))
        xs.append(xf)
        ys.append(rec.y[:, 0])
        seg.append(np.full(rec.n_samples, i))
        tr.append(np.asarray(trial))
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64), np.concatenate(seg), np.concatenate(tr)


def fit_td(dec: TDDecoder, chain: list[dict[str, Any]], ls: LabelledSet, n_classes: int) -> TDDecoder:
    """Fit an LDA-head :class:`TDDecoder` on every labelled sample of ``ls`` (through ``chain``)."""
    x, y, seg, tr = _filtered(chain, ls)
    feats = dec.features_of(x, seg).astype(np.float32)  # as rtdecode train keeps them (memory)
    return dec.fit_features(feats, y, np.flatnonzero(tr >= 0), n_inputs=x.shape[1], n_classes=n_classes)


def fit_td_lda(chain: list[dict[str, Any]], ls: LabelledSet, n_classes: int,
               settings: dict[str, Any]) -> TDDecoder:
    """TD features over ``settings["window_s"]`` → LDA on the labelled samples of ``ls``."""
    window = max(2, int(round(float(settings["window_s"]) * ls.recordings[0].fs)))
    return fit_td(TDDecoder(window, float(settings["threshold"]), settings["features"], head="lda",
                            stride=int(settings["stride"])), chain, ls, n_classes)


def fit_wiener_frames(chain: list[dict[str, Any]], ls: LabelledSet, targets: list[str],
                      settings: dict[str, Any], lags: int | None = None) -> WienerDecoder:
    """A ridge Wiener filter over ``history_s`` (or ``lags`` frames) of the chain's frames → ``targets``."""
    xs, ys, seg = [], [], []
    rate = None
    for i, (rec, trial) in enumerate(zip(ls.recordings, ls.trials, strict=True)):
        chain_i = build_chain(chain, rec.fs, rec.n_channels)
        xf, tf = chain_i.process(rec.x, np.asarray(rec.t))
        idx = np.clip(np.searchsorted(np.asarray(rec.t), tf), 0, rec.n_samples - 1)
        keep = np.asarray(trial)[idx] >= 0
        cols = [rec.target_names.index(t) for t in targets]
        xs.append(xf[keep])
        ys.append(rec.y[idx][keep][:, cols])  # type: ignore[index]
        seg.append(np.full(int(keep.sum()), i))
        rate = chain_i.rate_out_hz
    lags = lags or max(1, int(round(float(settings["history_s"]) * float(rate or 1.0))))
    return WienerDecoder(lags=lags, ridge=float(settings["ridge"])).fit(
        np.concatenate(xs), np.concatenate(ys), np.concatenate(seg))


def refit_decoder(meta: ModelMetadata, ls: LabelledSet) -> StreamingDecoder:
    """The numpy decoder of a classic model file, fitted again on ``ls`` with its own settings.

    The settings come from the file (``provenance["decoder"]``: the TD window, threshold and
    features; a Wiener filter's history is its receptive field).

    Raises
    ------
    ModelError
        For a model that is not a TD-LDA or a linear (Wiener) filter.
    """
    d = dict(meta.provenance.get("decoder") or {})
    kind = str(d.get("kind", ""))
    if kind == "td_lda":
        proto = TDDecoder(int(d["window"]), float(d["threshold"]), list(d["features"]), head="lda",
                          stride=int(d.get("stride", 5)))
        return fit_td(proto, [dict(s) for s in meta.preprocessing], ls, len(meta.outputs))
    if kind in ("wiener", "linear"):
        return fit_wiener_frames([dict(s) for s in meta.preprocessing], ls, [o.name for o in meta.outputs],
                                 {"ridge": float(d.get("ridge", 1e-3))}, lags=meta.receptive_field)
    raise ModelError(f"{meta.name} is a {kind or 'model'} without a refit rule",
                     "calibrate a TD-LDA or a Wiener model, or a network with its .torch.npz sidecar")


def decoder_bounds(dec: StreamingDecoder, recordings: list[Recording], chain: list[dict[str, Any]],
                   targets: list[str] | None = None) -> ModelBounds:
    """Training ranges of a numpy decoder: the raw inputs of ``recordings``; a classifier's [0, 1]
    (``targets`` None), or a regressor's ``targets`` with its own predictions over the chain's frames."""
    inputs = [r.x for r in recordings]
    names = ", ".join(Path(str(r.meta.get("file"))).name for r in recordings[:3])
    where = f"{len(inputs)} training recordings ({names}{', …' if len(recordings) > 3 else ''})"
    if targets is None:
        return ModelBounds(input=RangeStats.of(inputs), output=probability_range(dec.n_outputs), data=where)
    outs: list[np.ndarray] = []
    for rec in recordings:
        xf, _ = build_chain(chain, rec.fs, rec.n_channels).process(rec.x, np.asarray(rec.t))
        outs.append(dec.predict(xf))
        outs.append(np.asarray(rec.y)[:, [rec.target_names.index(t) for t in targets]])
    return model_bounds(inputs, outs, data=where)


def fit_baseline(meta: ModelMetadata, ls: LabelledSet, settings: dict[str, Any]
                 ) -> tuple[StreamingDecoder, list[dict[str, Any]]]:
    """The classic decoder for ``meta``'s task and chain, fitted on ``ls``; returns it and its chain."""
    if meta.task == "classification":
        chain = filter_stages(meta.preprocessing)
        return fit_td_lda(chain, ls, len(meta.outputs), settings), chain
    chain = [dict(s) for s in meta.preprocessing]
    return fit_wiener_frames(chain, ls, [o.name for o in meta.outputs], settings), chain


def stream_of(meta: ModelMetadata) -> dict[str, Any]:
    """The stream and output facts of a model, as :func:`write_decoder` takes them."""
    return {"rate_hz": meta.rate_hz, "channels": meta.channels, "task": meta.task,
            "outputs": [(o.name, o.unit) for o in meta.outputs], "channel_names": list(meta.channel_names),
            "input_unit": meta.input_unit}


def write_decoder(dec: StreamingDecoder, path: Path, *, name: str, rate_hz: float, channels: int, task: str,
                  outputs: list[tuple[str, str]], channel_names: list[str], input_unit: str,
                  chain: list[dict[str, Any]], provenance: dict[str, Any], metrics: dict[str, Any],
                  bounds: ModelBounds | None) -> Path:
    """Write a fitted numpy decoder as a streaming ONNX model (``channels`` @ ``rate_hz``, then ``chain``)."""
    from rtdecode.export.classic_onnx import decoder_graph, decoder_metadata
    from rtdecode.export.onnx_graphs import write_model

    rate_out = build_chain(chain, rate_hz, channels).rate_out_hz
    meta = decoder_metadata(dec, name=name, rate_hz=rate_hz, output_names=[n for n, _ in outputs],
                            output_units=[u for _, u in outputs], channels=channels, preprocessing=chain,
                            model_rate_hz=rate_out, input_unit=input_unit, provenance=provenance,
                            metrics=metrics, bounds=bounds)
    meta = meta.model_copy(update={"task": task, "channel_names": list(channel_names)})
    return write_model(decoder_graph(dec, meta), path)
