"""Fit a Kalman or Wiener decoder on the iBCI front end's features and write it as a model file.

Training data are read in blocks (a 1,024-channel, 30 kHz session is 120 MB per second), pushed
through the very chain the model file will carry (train/serve parity), and reduced to one
frame per bin: ``2 × C`` features (crossing counts, spike-band power) standardised with the
training statistics, and the targets at each bin's last sample. Steps:

1. thresholds: noise RMS of the spike-band signal over a calibration period
   (:func:`~rtdecode.ibci.thresholds.noise_rms`);
2. frames (:func:`front_end_frames`): the front end (:func:`~rtdecode.ibci.frontend.frontend_chain`)
   over the training blocks; a ``standardize`` stage with the frames' mean / std joins the chain;
3. the decoder (:func:`fit_decoder`): :class:`~rtdecode.decoders.kalman.KalmanDecoder` (steady-state gain) or
   :class:`~rtdecode.decoders.wiener.WienerDecoder` (``lags`` bins) on the standardised frames;
4. :func:`write_ibci_model`: the streaming ONNX graph with the chain, the training ranges
   (``bounds``) and the metrics in its metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.decoders.base import StreamingDecoder
from rtdecode.decoders.kalman import KalmanDecoder
from rtdecode.decoders.wiener import WienerDecoder
from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError, DataError
from rtdecode.export.classic_onnx import decoder_graph, decoder_metadata
from rtdecode.export.onnx_graphs import write_model
from rtdecode.ibci.frontend import frontend_chain
from rtdecode.ibci.thresholds import noise_rms
from rtdecode.metrics import r2_per_column
from rtdecode.runtime.bounds import ROBUST_PERCENTILE, ModelBounds, RangeStats

logger = logging.getLogger(__name__)

__all__ = ["DECODERS", "Frames", "IbciFit", "RawRange", "fit_decoder", "frame_set", "front_end_frames",
           "write_ibci_model"]

Blocks = Iterable[tuple[np.ndarray, np.ndarray]]
#: decoder kind → its class, called with :func:`fit_decoder`'s ``options``
DECODERS: dict[str, Callable[..., StreamingDecoder]] = {"kalman": KalmanDecoder, "wiener": WienerDecoder}


class RawRange:
    """Training range of the raw input channels, accumulated over blocks.

    Min / max are exact; the robust percentiles come from every ``stride``-th sample (a
    session of broadband data does not fit in memory).
    """

    def __init__(self, stride: int = 101) -> None:
        self.stride = int(stride)
        self._rows: list[np.ndarray] = []
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None
        self._seen = 0

    def add(self, x: np.ndarray) -> None:
        """Account for a block float (n, C)."""
        if not len(x):
            return
        self._rows.append(np.array(x[(-self._seen) % self.stride :: self.stride], np.float32))
        lo, hi = x.min(axis=0), x.max(axis=0)
        self._min = lo if self._min is None else np.minimum(self._min, lo)
        self._max = hi if self._max is None else np.maximum(self._max, hi)
        self._seen += len(x)

    def stats(self) -> RangeStats:
        """The :class:`RangeStats` of everything added."""
        if self._min is None or self._max is None:
            raise DataError("no training samples", "give at least one block of data")
        lo, hi = np.percentile(np.concatenate(self._rows), [ROBUST_PERCENTILE, 100 - ROBUST_PERCENTILE],
                               axis=0)
        mn, mx = self._min.astype(np.float64), self._max.astype(np.float64)
        return RangeStats(lo=np.clip(lo, mn, mx).tolist(), hi=np.clip(hi, mn, mx).tolist(),
                          min=mn.tolist(), max=mx.tolist())


def frame_set(blocks: Blocks, specs: list[dict[str, Any]], rate_hz: float, n_channels: int,
              raw: RawRange | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a chain over blocks, and the targets at each frame's last input sample.

    Parameters
    ----------
    blocks : iterable of (x float (n, C), y float (n, K))
        Consecutive blocks of one recording with a target row per sample.
    specs : list of dict
        The chain.
    rate_hz, n_channels :
        The stream.
    raw : RawRange, optional
        Also accumulates the raw inputs' range.

    Returns
    -------
    x : float32 (m, F)
        Frames.
    y : float32 (m, K)
        Targets.
    """
    chain = build_chain(specs, rate_hz, n_channels)
    xs, ys, start = [], [], 0
    for x, y in blocks:
        idx = np.arange(start, start + len(x), dtype=np.float64)  # sample indices as the "times"
        xf, tf = chain.process(x, idx)
        xs.append(xf)
        ys.append(np.asarray(y, np.float32)[tf.astype(np.int64) - start])
        if raw is not None:
            raw.add(x)
        start += len(x)
    if not xs or not sum(len(a) for a in xs):
        raise DataError("the training data make no frame", "give at least one bin of samples")
    return np.concatenate(xs), np.concatenate(ys)


@dataclass
class Frames:
    """The front end's standardised frames of a training session.

    Attributes
    ----------
    z : float32 (m, F)
        Frames after the chain (``standardize`` included).
    y : float32 (m, K)
        Targets at each frame's last sample.
    specs : list of dict
        The chain: front end + ``standardize`` with the frames' mean / std.
    rate_hz : float
    n_channels : int
    raw : RangeStats
        The raw inputs' training range.
    noise_rms : float64 (C,)
        The calibrated noise RMS, µV.
    """

    z: np.ndarray
    y: np.ndarray
    specs: list[dict[str, Any]]
    rate_hz: float
    n_channels: int
    raw: RangeStats
    noise_rms: np.ndarray


def front_end_frames(train: Blocks, calibration: Callable[[], Iterator[np.ndarray]], rate_hz: float,
                     n_channels: int, **chain: Any) -> Frames:
    """Calibrate the thresholds and run the front end over a training session.

    Parameters
    ----------
    train : iterable of (x float (n, C) µV, y float (n, K))
        The training session in consecutive blocks, targets per sample.
    calibration : callable
        Returns an iterator over a calibration recording's blocks float (n, C) (e.g. the first
        30 s of the session).
    rate_hz, n_channels :
        The stream.
    **chain :
        Keyword arguments of :func:`frontend_chain` (``threshold``, ``bin_s``, ``exclude`` …).
    """
    prefix = frontend_chain(1.0, **chain)[:2]  # car → butter: the thresholds' input
    rms = noise_rms(calibration(), prefix, rate_hz, n_channels)
    front = frontend_chain(rms.tolist(), **chain)
    raw = RawRange()
    x, y = frame_set(train, front, rate_hz, n_channels, raw)
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-3)
    specs = front + [{"kind": "standardize", "mean": mean.tolist(), "std": std.tolist()}]
    return Frames(((x - mean) / std).astype(np.float32), y, specs, rate_hz, n_channels, raw.stats(), rms)


@dataclass
class IbciFit:
    """A decoder fitted behind the front end.

    Attributes
    ----------
    decoder : StreamingDecoder
    specs : list of dict
        The chain it was fitted behind (front end + ``standardize``).
    rate_hz : float
    n_channels : int
    bounds : ModelBounds
        Raw inputs' and outputs' training ranges.
    metrics : dict
        ``r2_train`` per output, the median noise RMS.
    """

    decoder: StreamingDecoder
    specs: list[dict[str, Any]]
    rate_hz: float
    n_channels: int
    bounds: ModelBounds
    metrics: dict[str, Any] = field(default_factory=dict)

    def r2(self, blocks: Blocks, skip_s: float = 1.0) -> np.ndarray:
        """R² per output of the model on other data (the first ``skip_s`` left out: the
        filters and the decoder settle)."""
        x, y = frame_set(blocks, self.specs, self.rate_hz, self.n_channels)
        skip = int(round(skip_s * build_chain(self.specs, self.rate_hz, self.n_channels).rate_out_hz))
        return r2_per_column(y[skip:], self.decoder.predict(x)[skip:])


def fit_decoder(frames: Frames, decoder: str = "kalman", rows: slice = slice(None),
                **options: Any) -> IbciFit:
    """Fit a decoder on (some rows of) the frames.

    Parameters
    ----------
    frames : Frames
    decoder : {"kalman", "wiener"}
    rows : slice
        The frames to fit on (e.g. the first 80 % for a validation split).
    **options :
        Keyword arguments of the decoder (Wiener: ``lags``, ``ridge``).
    """
    if decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r}", f"use one of {sorted(DECODERS)}")
    z, y = frames.z[rows], frames.y[rows]
    dec = DECODERS[decoder](**options).fit(z, y)
    fitted = dec.predict(z)
    bounds = ModelBounds(input=frames.raw, output=RangeStats.of([y, fitted]),
                         data=f"{len(y)} frames of {frames.rate_hz:g} Hz broadband data")
    return IbciFit(dec, frames.specs, frames.rate_hz, frames.n_channels, bounds,
                   {"r2_train": r2_per_column(y, fitted).round(4).tolist(),
                    "noise_rms_median_uv": round(float(np.median(frames.noise_rms)), 3)})


def write_ibci_model(fit: IbciFit, path: str | Path, *, output_names: list[str],
                     output_units: list[str], provenance: dict[str, Any] | None = None,
                     metrics: dict[str, Any] | None = None) -> Path:
    """Write the fitted model as a streaming ONNX file (chain, bounds, metrics in its metadata)."""
    path = Path(path)
    chain = build_chain(fit.specs, fit.rate_hz, fit.n_channels)
    meta = decoder_metadata(fit.decoder, name=path.stem, rate_hz=fit.rate_hz, output_names=output_names,
                            output_units=output_units, channels=fit.n_channels, preprocessing=chain.specs,
                            model_rate_hz=chain.rate_out_hz, input_unit="µV (broadband)",
                            provenance=provenance, metrics={**fit.metrics, **(metrics or {})},
                            bounds=fit.bounds)
    return write_model(decoder_graph(fit.decoder, meta), path)
