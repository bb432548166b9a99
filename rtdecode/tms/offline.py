"""The offline event path: a recording and its markers → the same measures as the live service.

:func:`measure_session` parses the recording's markers with the live parser, picks the
channels as the live plug-in does and measures every pulse with the live code
(:func:`rtdecode.tms.measure.measure_recording`); :func:`write_measures` writes them as CSV.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from rtdecode.errors import DataError
from rtdecode.io.recording import Recording
from rtdecode.sinks.event_payload import MEASURES
from rtdecode.sinks.protocol import flag_names
from rtdecode.tms.config import UV_PER_UNIT, TmsConfig
from rtdecode.tms.events import MarkerParser, Pulse
from rtdecode.tms.measure import MepMeasurer, MepResult, measure_recording
from rtdecode.tms.plugin import resolve_channels

logger = logging.getLogger(__name__)

__all__ = ["measure_session", "write_measures"]


def measure_session(rec: Recording, cfg: TmsConfig) -> tuple[list[str], list[tuple[Pulse, MepResult]]]:
    """Measure every marked pulse of a recording.

    Parameters
    ----------
    rec : Recording
        Samples and ``meta["markers"]`` (times in s from the first sample, labels).
    cfg : TmsConfig
        The ``[tms]`` section (channels, units, windows, chain, accepted markers).

    Returns
    -------
    labels : list of str
        Measured channels.
    pulses : list of (Pulse, MepResult)
        In time order; ``Pulse.t`` is in s from the first sample.

    Raises
    ------
    DataError
        The recording has no markers.
    """
    marks = rec.meta.get("markers")
    if marks is None or not len(marks[1]):
        raise DataError(f"{rec.meta.get('file', 'the recording')} has no markers",
                        "use a recording with a marker stream (XDF) or one of the TMS datasets")
    cols, _ = resolve_channels(cfg, list(rec.channel_names))
    parser = MarkerParser(cfg.markers.accept if cfg.markers is not None else None)
    pulses = [p for p in (parser.parse(lab, float(t)) for t, lab in zip(*marks, strict=True))
              if p is not None]
    pulses.sort(key=lambda p: p.t)
    measurer = MepMeasurer(cfg.measure, rec.fs, len(cols), UV_PER_UNIT[cfg.units])
    assert rec.t is not None
    results = measure_recording(rec.x[:, cols], rec.t, np.array([p.t for p in pulses]), measurer)
    return [rec.channel_names[i] for i in cols], list(zip(pulses, results, strict=True))


def write_measures(path: str | Path, labels: list[str],
                   pulses: list[tuple[Pulse, MepResult]]) -> None:
    """CSV: ``pulse, t_s, intensity, unit, flags``, then ``<channel>_<measure>`` per channel."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["pulse", "t_s", "intensity", "unit", "flags"]
                   + [f"{c}_{m}" for c in labels for m in MEASURES])
        for p, r in pulses:
            w.writerow([p.pulse_id, f"{p.t:.6f}", p.intensity, p.unit, "|".join(flag_names(r.flags))]
                       + [f"{v:.4f}" for v in r.values.reshape(-1)])
