"""Recordings → training arrays, through the service's own causal preprocessing chain.

Every dataset is reduced to a :class:`TrainingData`: a list of continuous
:class:`Segment` s (one per recording file; the monkey reach file is one segment of
concatenated trials), each holding the model frames that ``build_chain(specs, fs, C)``
outputs — the same stage objects the daemon runs — the targets at each frame, and the
trial id of each frame (the unit that the protocols in :mod:`rtdecode.nn.protocols`
assign to training, validation and test sets).

A frame's target is the target at the newest input sample the frame depends on (the
time the chain stamps it with), so a model is trained to output, at each frame, the
value at the moment the frame is complete — what it must do live.

Nothing here imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rtdecode.dsp import build_chain
from rtdecode.errors import DataError
from rtdecode.io.recording import Recording

logger = logging.getLogger(__name__)

__all__ = [
    "Segment",
    "TrainingData",
    "flexemg_chain",
    "grid_spec",
    "make_training_data",
    "standardize_spec",
]

Task = Literal["regression", "classification"]


@dataclass
class Segment:
    """One continuous stretch of model frames (the chain ran over it without a reset).

    Attributes
    ----------
    x : float32 (T, C)
        Model frames (preprocessing chain output).
    y : float32 (T, K) or int64 (T,)
        Regression targets, or class labels for a classifier.
    trial : int64 (T,)
        Trial id of each frame (the unit of the splits).
    name : str
        Where it came from (file name).
    """

    x: np.ndarray
    y: np.ndarray
    trial: np.ndarray
    name: str = ""

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.x.shape[0])


@dataclass
class TrainingData:
    """Frames, targets and trial ids of a dataset, with everything export needs.

    Attributes
    ----------
    segments : list of Segment
    task : {"regression", "classification"}
    rate_hz : float
        Input stream rate (before preprocessing), Hz.
    channels : int
        Input stream channels.
    preprocessing : list of dict
        The chain specs that produced ``segments[i].x`` from the recordings.
    frame_rate_hz : float
        Rate of the model frames, Hz.
    output_names, output_units : list of str
        One per regression target (for a classifier: the class names, unit "probability").
    class_names : list of str or None
        Classifier classes (label k = ``class_names[k]``).
    channel_names : list of str
        Input stream channel names.
    input_unit : str
        Unit of the input stream.
    grid_shape : (int, int) or None
        Electrode grid of the model frames (from a ``grid`` stage).
    provenance : dict
        Data source, files, splits.
    recordings : list of Recording
        The recordings the segments came from (for baselines with their own chain and for
        replaying through the service); one per segment.
    sample_y : list of ndarray
        Per recording, the target of every input sample (int64 (n,) labels or float32 (n, K)).
    sample_trials : list of int64 (n,)
        Per recording, the trial id of every input sample (-1: left out).
    """

    segments: list[Segment]
    task: Task
    rate_hz: float
    channels: int
    preprocessing: list[dict[str, Any]]
    frame_rate_hz: float
    output_names: list[str]
    output_units: list[str]
    class_names: list[str] | None = None
    channel_names: list[str] = field(default_factory=list)
    input_unit: str = ""
    grid_shape: tuple[int, int] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    recordings: list[Recording] = field(default_factory=list)
    sample_y: list[np.ndarray] = field(default_factory=list)
    sample_trials: list[np.ndarray] = field(default_factory=list)

    @property
    def trials(self) -> list[int]:
        """Trial ids present (≥ 0), in order of first appearance in time."""
        order: list[int] = []
        for s in self.segments:
            ids, first = np.unique(s.trial, return_index=True)
            order += [int(ids[j]) for j in np.argsort(first) if ids[j] >= 0]
        return list(dict.fromkeys(order))

    @property
    def n_inputs(self) -> int:
        """Channels of the model frames."""
        return int(self.segments[0].x.shape[1])

    @property
    def n_outputs(self) -> int:
        """Regression targets K, or classes for a classifier."""
        if self.task == "classification":
            return len(self.class_names or [])
        return int(self.segments[0].y.shape[1])

    def frames(self, trials: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """All frames (and targets) of the given trials, concatenated in time order.

        Returns
        -------
        x : float32 (N, C)
        y : float32 (N, K) or int64 (N,)
        """
        want = np.asarray(list(trials), dtype=np.int64)
        xs, ys = [], []
        for s in self.segments:
            m = np.isin(s.trial, want)
            if m.any():
                xs.append(s.x[m])
                ys.append(s.y[m])
        if not xs:
            raise DataError(f"no frames for trials {list(trials)[:10]}",
                            f"use trial ids present in the data: {self.trials[:10]}…")
        return np.concatenate(xs), np.concatenate(ys)

    def with_stage(self, spec: dict[str, Any]) -> TrainingData:
        """A copy with one more memoryless stage (e.g. ``standardize``) applied to every frame.

        The stage is built with :func:`build_chain` at the frame rate and appended to
        ``preprocessing``, so the exported chain reproduces these frames exactly.
        """
        stage_chain = build_chain([spec], self.frame_rate_hz, self.n_inputs)
        segs = []
        for s in self.segments:
            t = np.arange(s.n_frames, dtype=np.float64) / self.frame_rate_hz
            x, _ = stage_chain.process(s.x, t)
            if x.shape[0] != s.n_frames:
                raise DataError(f"stage {spec.get('kind')!r} changed the frame count",
                                "append only memoryless stages after the data is built")
            stage_chain.reset()
            segs.append(replace(s, x=x))
        return replace(self, segments=segs, preprocessing=[*self.preprocessing, *stage_chain.specs])


# -- chain helpers ---------------------------------------------------------------------------


def grid_spec(arraymap: np.ndarray) -> dict[str, Any]:
    """A ``grid`` stage spec from a 1-based electrode map (rows, cols); 0 / negative = empty."""
    amap = np.asarray(arraymap, dtype=np.int64)
    order = [int(v) - 1 if v > 0 else -1 for v in amap.reshape(-1)]
    return {"kind": "grid", "shape": [int(amap.shape[0]), int(amap.shape[1])], "order": order}


def flexemg_chain(arraymap: np.ndarray, *, band_hz: tuple[float, float] = (45.0, 55.0),
                  range_mv: float = 2.5) -> list[dict[str, Any]]:
    """Seed 004's image chain for a flexemg trial.

    2nd-order Butterworth band-stop ``band_hz``; ``[-range_mv, +range_mv]`` mV → [0, 1]
    (``scale`` then ``clip``); channels laid out on the electrode grid.
    """
    return [
        {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": list(band_hz)},
        {"kind": "scale", "gain": 1.0 / (2.0 * range_mv), "offset": -range_mv},
        {"kind": "clip", "min_value": 0.0, "max_value": 1.0},
        grid_spec(arraymap),
    ]


def standardize_spec(data: TrainingData, trials: Sequence[int], min_std: float = 1e-6) -> dict[str, Any]:
    """A ``standardize`` spec with the mean and std of the model frames of ``trials``.

    Channels with a std below ``min_std`` get ``std = 1`` (they stay constant).
    """
    x, _ = data.frames(trials)
    mean = x.astype(np.float64).mean(axis=0)
    std = x.astype(np.float64).std(axis=0)
    std = np.where(std < min_std, 1.0, std)
    return {"kind": "standardize", "mean": [float(v) for v in mean], "std": [float(v) for v in std]}


# -- loading ---------------------------------------------------------------------------------


def _target_columns(first: Recording, targets: Sequence[str] | None, task: Task) -> list[int]:
    names = list(first.target_names)
    if targets:
        missing = [t for t in targets if t not in names]
        if missing:
            raise DataError(f"data.targets {missing} not in the recording's targets {names}",
                            f"use some of {names}")
        cols = [names.index(t) for t in targets]
    else:
        cols = list(range(len(names)))
    return cols[:1] if task == "classification" else cols


def _check_recordings(recordings: Sequence[Recording]) -> Recording:
    if not recordings:
        raise DataError("no recordings", "check data.path")
    first = recordings[0]
    for r in recordings:
        if r.y is None:
            raise DataError(f"recording {r.meta.get('file', '?')} has no targets",
                            "give targets: y_* columns (.csv), y (.npz), data.target_stream or "
                            "data.markers (.xdf); `rtdecode inspect` shows what a recording holds")
        if r.fs != first.fs or r.n_channels != first.n_channels:
            raise DataError("recordings differ in rate or channel count",
                            "train on recordings of one montage and rate")
    return first


def _targets(rec: Recording, cols: list[int], task: Task) -> np.ndarray:
    y = np.asarray(rec.y)[:, cols]
    return y[:, 0].astype(np.int64) if task == "classification" else y.astype(np.float32)


def _segment(rec: Recording, trial: np.ndarray, chain: Any, cols: list[int], task: Task) -> Segment:
    """Run one recording through the chain; each frame gets the target at the newest sample it saw."""
    t_in = np.asarray(rec.t)
    x, t_out = chain.process(rec.x, t_in)
    idx = np.clip(np.searchsorted(t_in, t_out), 0, rec.n_samples - 1)
    return Segment(x=x, y=_targets(rec, cols, task)[idx], trial=np.asarray(trial)[idx].astype(np.int64),
                   name=Path(str(rec.meta.get("file", ""))).name)


def make_training_data(recordings: Sequence[Recording], trials: Sequence[np.ndarray],
                       preprocessing: Sequence[dict[str, Any]], *, task: Task,
                       targets: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                       output_units: Sequence[str] | None = None, provenance: dict[str, Any] | None = None
                       ) -> TrainingData:
    """Run each recording through a fresh ``build_chain(preprocessing, fs, C)`` and pair frames with targets.

    Parameters
    ----------
    recordings : list of Recording
        All with the same rate and channel count, each with targets ``y``.
    trials : list of int64 (n_samples,)
        Trial id per sample of each recording (-1: left out of every set).
    preprocessing : list of dict
        Chain specs (the service's causal stages).
    task : {"regression", "classification"}
    targets : list of str, optional
        Regression: names of the target columns to use (default all). Classification:
        the one label column (default the first).
    class_names : list of str, optional
        Classification: names of classes 0..G-1 (default the recording's ``label_names``).
    output_units : list of str, optional
        Units of the regression targets (default from the recording's ``meta["units"]``).
    provenance : dict, optional

    Returns
    -------
    TrainingData

    Raises
    ------
    DataError
        Recordings without targets, a missing target name, mixed rates / channel counts.
    """
    first = _check_recordings(recordings)
    cols = _target_columns(first, targets, task)
    segments = []
    for rec, trial in zip(recordings, trials, strict=True):
        chain = build_chain(list(preprocessing), first.fs, first.n_channels)  # fresh state per recording
        segments.append(_segment(rec, trial, chain, cols, task))
    units_meta = first.meta.get("units", {}) or {}
    cls = None
    if task == "classification":
        cls = list(class_names or first.meta.get("label_names") or [])
        n_cls = int(max(int(s.y.max()) for s in segments if s.n_frames)) + 1
        cls += [f"class{i}" for i in range(len(cls), n_cls)]
        out_names, out_units = cls, ["probability"] * len(cls)
    else:
        out_names = [first.target_names[c] for c in cols]
        out_units = list(output_units) if output_units else [str(units_meta.get(n, "")) for n in out_names]
    return TrainingData(
        segments=segments, task=task, rate_hz=float(first.fs), channels=first.n_channels,
        preprocessing=chain.specs, frame_rate_hz=float(chain.rate_out_hz),
        output_names=out_names, output_units=out_units, class_names=cls,
        channel_names=list(first.channel_names), input_unit=str(units_meta.get("x", "")),
        grid_shape=chain.grid_shape, provenance=dict(provenance or {}), recordings=list(recordings),
        sample_y=[_targets(r, cols, task) for r in recordings],
        sample_trials=[np.asarray(t, dtype=np.int64) for t in trials],
    )
