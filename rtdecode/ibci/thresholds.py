"""Per-channel noise RMS over a calibration period, and recalibrating a model's thresholds.

Threshold crossings are counted at ``threshold × noise_rms`` per channel, where ``noise_rms``
is the RMS of the channel's spike-band signal (the input of the ``crossings`` stage: after the
chain's ``car`` and ``butter``) over a calibration recording of the session, as iBCI rigs do at
the start of each session (e.g. -4.5 × RMS). The RMS travels in the model file, inside the
stage's spec. A new session (other electrode impedances, other noise) gets new thresholds
without refitting the decoder: :func:`recalibrate_chain` on a recording of that session, or
``rtdecode thresholds MODEL RECORDING --out NEW.onnx``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from rtdecode.dsp import build_chain, parse_chain
from rtdecode.dsp.specs import spec_to_dict
from rtdecode.errors import DataError
from rtdecode.ibci.frontend import THRESHOLD_KINDS

logger = logging.getLogger(__name__)

__all__ = ["noise_rms", "recalibrate_chain"]


def noise_rms(blocks: Iterable[np.ndarray], specs: list[dict[str, Any]], rate_hz: float,
              n_channels: int) -> np.ndarray:
    """RMS of each output channel of a chain (the spike-band signal) over a recording.

    The chain's first ``memory_s`` of output (its filters' start-up transient) is left out.

    Parameters
    ----------
    blocks : iterable of float (n, C)
        The calibration recording in consecutive blocks, stream units (µV).
    specs : list of dict
        The chain before the threshold stage (e.g. ``[car, butter]``).
    rate_hz : float
        Sample rate, Hz.
    n_channels : int
        Channels of the recording.

    Returns
    -------
    float64 (n_out,)
        RMS per channel, stream units.

    Raises
    ------
    DataError
        If the recording is shorter than the transient plus one sample, or a channel is flat.
    """
    chain = build_chain(specs, rate_hz, n_channels)
    skip = int(np.ceil(chain.memory_s * chain.rate_out_hz))
    total = np.zeros(chain.n_out)
    count = 0
    for x in blocks:
        y, _ = chain.process(x, np.zeros(len(x)))
        drop = min(skip, len(y))
        skip -= drop
        y = y[drop:]
        total += np.einsum("ij,ij->j", y, y, dtype=np.float64)
        count += len(y)
    if count == 0:
        raise DataError(f"the calibration recording is shorter than the chain's start-up transient "
                        f"({chain.memory_s:.3g} s)", "record a longer calibration period (e.g. 30 s)")
    rms = np.sqrt(total / count)
    flat = np.flatnonzero(~(rms > 0))
    if flat.size:
        raise DataError(f"channel(s) {flat[:5].tolist()} are flat in the calibration recording "
                        "(noise RMS 0): no threshold can be set",
                        "leave dead channels out with a 'select' stage before the front end")
    logger.info("noise RMS over %d samples: median %.3g, range %.3g..%.3g", count, np.median(rms),
                rms.min(), rms.max())
    return rms


def recalibrate_chain(specs: list[dict[str, Any]], rate_hz: float, n_channels: int,
                      blocks: Callable[[], Iterator[np.ndarray]],
                      threshold: float | None = None) -> list[dict[str, Any]]:
    """The chain with every threshold stage's ``noise_rms`` estimated on a recording.

    Parameters
    ----------
    specs : list of dict
        A model's chain.
    rate_hz, n_channels :
        The stream the chain takes.
    blocks : callable
        Returns a fresh iterator over the calibration recording's blocks (float (n, C)); called
        once per threshold stage.
    threshold : float, optional
        A new threshold multiple for those stages (default: keep theirs).

    Returns
    -------
    list of dict
        Normalised specs; the threshold stages carry the new per-channel RMS.

    Raises
    ------
    DataError
        If the chain has no threshold stage, or the recording cannot calibrate it.
    """
    out = [spec_to_dict(s) for s in parse_chain(specs)]
    found = [i for i, s in enumerate(out) if s["kind"] in THRESHOLD_KINDS]
    if not found:
        raise DataError("the chain has no threshold-crossing stage to calibrate "
                        f"(kinds: {[s['kind'] for s in out]})",
                        f"use a model whose chain has one of {list(THRESHOLD_KINDS)}")
    for i in found:
        out[i]["noise_rms"] = noise_rms(blocks(), out[:i], rate_hz, n_channels).tolist()
        if threshold is not None:
            out[i]["threshold"] = float(threshold)
    build_chain(out, rate_hz, n_channels)  # still a valid chain for this stream
    return out
