"""The iBCI front end as a preprocessing chain, and the blocks that feed it offline.

Broadband data (µV, e.g. 30 kHz) → ``car`` (common average reference) → ``butter`` (the spike
band: a causal 4th-order Butterworth high-pass at 250 Hz by default) → ``crossings_sbp``
(threshold crossings at ``threshold`` × each channel's noise RMS, and spike-band power, in
bins of ``bin_s``): ``2 × C`` features per bin, crossing counts first. The reference and the
filter compute in float32 by default (``precision``): at 1,024 channels × 30 kHz the front end's
cost is memory traffic, which float32 halves; against float64 arithmetic the spike-band power
agrees within 1e-4 relative (median ~3e-7) and a crossing can differ only where a sample lies
within ~1e-5 of its threshold (docs/ibci.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rtdecode.io.recording import Recording

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BIN_S", "DEFAULT_THRESHOLD", "SPIKE_BAND", "THRESHOLD_KINDS", "frontend_chain",
           "recording_blocks"]

#: Threshold, as a multiple of each channel's noise RMS (negative-going crossings).
DEFAULT_THRESHOLD = -4.5
#: Bin length of the features, s (the decoder's frame period: 50 Hz).
DEFAULT_BIN_S = 0.02
#: The spike-band filter: causal 4th-order Butterworth high-pass at 250 Hz.
SPIKE_BAND: dict[str, Any] = {"kind": "butter", "btype": "highpass", "order": 4, "cutoff_hz": 250.0}
#: Stage kinds that carry per-channel thresholds (``noise_rms``).
THRESHOLD_KINDS = ("crossings", "crossings_sbp")


def frontend_chain(noise_rms: float | Sequence[float], *, threshold: float = DEFAULT_THRESHOLD,
                   bin_s: float = DEFAULT_BIN_S, exclude: Sequence[int] = (),
                   groups: Sequence[Sequence[int]] | None = None, band: dict[str, Any] | None = None,
                   measure: str = "square", precision: str = "float32") -> list[dict[str, Any]]:
    """Chain specs of the front end.

    Parameters
    ----------
    noise_rms : float or sequence of float
        Noise RMS of each channel of the spike-band signal, µV
        (:func:`rtdecode.ibci.thresholds.noise_rms`); a scalar for all channels.
    threshold : float
        Threshold as a multiple of the noise RMS (default -4.5).
    bin_s : float
        Feature bin, s (default 20 ms).
    exclude, groups :
        The ``car`` stage's channels left out of the reference and its groups (e.g. one per
        array); see :class:`~rtdecode.dsp.specs.CarSpec`.
    band : dict, optional
        The spike-band filter's ``butter`` spec (default :data:`SPIKE_BAND`).
    measure : {"square", "abs"}
        Spike-band power as the mean of x² or of |x|.
    precision : {"float32", "float64"}
        Arithmetic of the ``car`` and ``butter`` stages (the features follow).

    Returns
    -------
    list of dict
        ``[car, butter, crossings_sbp]`` specs.
    """
    rms: float | list[float] = (float(noise_rms) if isinstance(noise_rms, (int, float))
                                else [float(v) for v in noise_rms])
    car: dict[str, Any] = {"kind": "car", "exclude": [int(c) for c in exclude], "precision": precision}
    if groups is not None:
        car["groups"] = [[int(c) for c in g] for g in groups]
    return [car, {**(band or SPIKE_BAND), "precision": precision},
            {"kind": "crossings_sbp", "threshold": float(threshold), "noise_rms": rms,
             "bin_s": float(bin_s), "measure": measure}]


def recording_blocks(rec: Recording, block_s: float = 1.0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A recording in consecutive blocks: (x float32 (n, C), y (n, K) or an empty (n, 0) array).

    Parameters
    ----------
    rec : Recording
        Broadband samples and, for training, targets per sample.
    block_s : float
        Block length, s (the chains keep their state across blocks, so any length gives the
        same frames).
    """
    step = max(1, int(round(block_s * rec.fs)))
    y = rec.y if rec.y is not None else np.zeros((rec.n_samples, 0), np.float32)
    for i in range(0, rec.n_samples, step):
        yield rec.x[i : i + step], y[i : i + step]
