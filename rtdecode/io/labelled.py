"""Any recording → a labelled set for training and evaluation: what the targets and trials are.

:class:`DataSpec` (the ``[data]`` table of a training config, also stored with every trained
model so ``rtdecode evaluate`` reads a new recording the same way) names

- the files: one file, a folder (every readable recording in it, ``files`` a glob) or a
  dataset folder (the monkey reach CSV folder), ``stream`` for XDF;
- the targets: regression columns (``targets``: ``y_*`` CSV columns, ``y`` of an ``.npz``,
  a dataset's targets, or ``target_stream``, a numeric XDF stream interpolated onto the
  samples), or class labels (a label column, or ``markers``: events read from a marker
  stream by :class:`~rtdecode.io.events.MarkerLabels`);
- the trials, the unit the protocols split: ``files`` (one per file), ``ids`` (per-sample
  ids in the file: ``trial`` of an ``.npz``, the monkey reach trial column), ``events``
  (each marker event with the rest before it, ``events_per_trial`` per trial) or ``blocks``
  (consecutive blocks of ``trial_block_s``); ``auto`` picks the first that applies in that
  order.

The shared datasets are presets of the same path (``kind = "flexemg"``: a folder of trial
files with a label column; ``monkey_reach``: trial ids in the file; ``otb`` / ``npz``: one
file), kept so that older configs still read.

Nothing here imports torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rtdecode.errors import DataError
from rtdecode.io import datasets
from rtdecode.io.events import MarkerLabels, class_map, event_trials, find_events, label_samples
from rtdecode.io.readers import SUPPORTED_SUFFIXES, mat_layout, read_recording
from rtdecode.io.recording import Recording

logger = logging.getLogger(__name__)

__all__ = ["DATA_KINDS", "DataSpec", "LabelledSet", "block_trials", "load_labelled", "recording_files",
           "shuffle_trials"]

#: ``[data] kind`` values: the generic path and the shared datasets' presets.
DATA_KINDS = ("recording", "flexemg", "monkey_reach", "otb", "npz")

TrialRule = Literal["auto", "files", "ids", "events", "blocks"]


class DataSpec(BaseModel):
    """Which recordings, which targets, which trials (see the module notes)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["recording", "flexemg", "monkey_reach", "otb", "npz"] = Field(
        "recording", description="recording (any readable file or folder) or a shared dataset's preset")
    path: Path = Field(description="file, folder or dataset folder; relative to the config file's folder")
    files: str = Field("*", description="glob of the files to read in a folder (e.g. '*.xdf')")
    stream: str | None = Field(None, description="XDF: the stream of samples (default: most channels)")
    target_stream: str | None = Field(None, description="XDF: a numeric stream whose channels are the "
                                      "regression targets (interpolated at the samples' times)")
    targets: list[str] | None = Field(None, description="regression targets by name (default all), or "
                                      "the one label column of a classifier")
    markers: MarkerLabels | None = Field(None, description="class labels from marker events")
    trials: TrialRule = Field("auto", description="what a trial is: files, ids, events, blocks or auto")
    events_per_trial: int = Field(1, ge=1, description="trials = 'events': events per trial")
    trial_block_s: float | None = Field(None, gt=0, description="trials = 'blocks': block length, s")
    max_trials: int | None = Field(None, ge=1, description="use only the first N files of a folder")
    fs_hz: float | None = Field(None, gt=0, description="rate of files that do not store one, Hz")
    shuffle_trials: int | None = Field(None, ge=0, description="seed: put each recording's trials in a "
                                       "random order (trials kept whole) before the chain, for recordings "
                                       "stored sorted by condition (the monkey reach trials are sorted by "
                                       "reach direction); default: as recorded")


@dataclass
class LabelledSet:
    """Recordings with their targets and trials.

    Attributes
    ----------
    recordings : list of Recording
        Each with ``y``: regression targets (n, K), or class labels (n, 1) for a classifier.
    trials : list of int64 (n_samples,)
        Trial id of each sample; -1 for samples left out (e.g. between events without a rest
        class).
    class_names : list of str or None
        Classes (label k = ``class_names[k]``) when the labels come from markers or a dataset
        that names them.
    files : list of Path
    """

    recordings: list[Recording]
    trials: list[np.ndarray]
    class_names: list[str] | None
    files: list[Path]


def block_trials(n_samples: int, fs: float, block_s: float) -> np.ndarray:
    """Trial ids for a continuous recording cut into consecutive blocks of ``block_s`` s.

    Returns
    -------
    int64 (n_samples,)
        ``1 + floor(i / (block_s · fs))``; a last block shorter than half a block joins the
        one before.
    """
    if block_s <= 0:
        raise DataError(f"trial_block_s must be > 0, got {block_s}", "give a block length in s")
    per = max(1, int(round(block_s * fs)))
    ids = np.arange(n_samples, dtype=np.int64) // per
    n_blocks = int(ids[-1]) + 1 if n_samples else 0
    if n_blocks > 1 and (n_samples - (n_blocks - 1) * per) < per / 2:
        ids[ids == n_blocks - 1] = n_blocks - 2
    return ids + 1


def _readable(p: Path) -> bool:
    """A recording file (a ``.mat`` only when its variables match a supported layout)."""
    if not p.is_file() or p.suffix.lower() not in SUPPORTED_SUFFIXES:
        return False
    if p.suffix.lower() == ".mat" and mat_layout(p) is None:
        logger.info("%s: not a recording layout (variables match no reader), skipped", p)
        return False
    return True


def recording_files(spec: DataSpec) -> list[Path]:
    """The files (or dataset folder) ``spec`` names, in sorted order, at most ``max_trials``.

    Raises
    ------
    DataError
        A missing path, or a folder without readable recordings.
    """
    path = spec.path
    if not path.exists():
        raise DataError(f"data.path {path} does not exist",
                        "check the path (relative paths are from the config file's folder)")
    if path.is_file() or datasets.is_monkey_reach_folder(path):
        return [path]
    files = [p for p in sorted(path.rglob(spec.files)) if _readable(p)][: spec.max_trials or None]
    if not files:
        raise DataError(f"no recordings matching {spec.files!r} under {path}",
                        f"point data.path at a file or a folder of {', '.join(SUPPORTED_SUFFIXES)} files")
    return files


def _has_ids(rec: Recording) -> bool:
    return rec.meta.get("trial_id") is not None


def _rule(spec: DataSpec, rec: Recording, n_files: int) -> TrialRule:
    if spec.trials != "auto":
        return spec.trials
    if n_files > 1:
        return "files"
    if _has_ids(rec):
        return "ids"
    if spec.markers is not None:
        return "events"
    return "blocks"


def _trial_ids(spec: DataSpec, rec: Recording, i_file: int, n_files: int, events: np.ndarray | None
               ) -> np.ndarray:
    """Trial id per sample of one recording by the spec's rule (ids unique within the file)."""
    rule = _rule(spec, rec, n_files)
    if rule == "files":
        return np.full(rec.n_samples, i_file + 1, dtype=np.int64)
    if rule == "ids":
        if not _has_ids(rec):
            raise DataError(f"{rec.meta.get('file')} has no trial ids", "set data.trials to files, events "
                            "or blocks, or store `trial` (one id per sample) in the .npz")
        return np.asarray(rec.meta["trial_id"], dtype=np.int64)
    if rule == "events":
        if events is None:
            raise DataError("data.trials = 'events' needs data.markers", "configure [data.markers]")
        assert rec.t is not None
        return event_trials(rec.t, events, spec.events_per_trial)
    if spec.trial_block_s is None:
        raise DataError(f"{rec.meta.get('file')} has no trial ids and data.trial_block_s is not set",
                        "set data.trial_block_s (s) to cut the recording into trials, or store `trial` "
                        "(one id per sample) in the .npz, or label trials with data.markers")
    return block_trials(rec.n_samples, rec.fs, spec.trial_block_s)


def _marker_labels(spec: DataSpec, recs: list[Recording], known: list[str] | None
                   ) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Class names, per-recording labels and keep masks from the markers (one class map for all)."""
    assert spec.markers is not None
    found = []
    for rec in recs:
        markers = (rec.meta.get("marker_streams", {}).get(spec.markers.stream) if spec.markers.stream
                   else rec.meta.get("markers"))
        if markers is None:
            raise DataError(f"{rec.meta.get('file')} has no marker stream"
                            + (f" named {spec.markers.stream!r}" if spec.markers.stream else ""),
                            "record the events as a string (marker) stream in the XDF file")
        found.append(find_events(markers, spec.markers))
    names, index = class_map([e.label for ev in found for e in ev], spec.markers, known)
    labelled = [label_samples(np.asarray(r.t), ev, index, spec.markers)
                for r, ev in zip(recs, found, strict=True)]
    for rec, lab in zip(recs, labelled, strict=True):
        rec.y = lab.y.astype(np.float32)[:, None]
        rec.target_names = ["label"]
        rec.meta["events"] = lab.events
    return names, [lab.keep for lab in labelled], [lab.events for lab in labelled]


def _class_names(recs: list[Recording]) -> list[str] | None:
    names = {tuple(r.meta.get("label_names") or ()) for r in recs}
    if len(names) > 1:
        raise DataError(f"the recordings disagree on the label names: {sorted(names)}",
                        "train on recordings of one labelling (e.g. one session)")
    return list(next(iter(names))) or None


def load_labelled(spec: DataSpec, *, class_names: list[str] | None = None) -> LabelledSet:
    """Read the recordings ``spec`` names with their targets and trial ids.

    Parameters
    ----------
    spec : DataSpec
    class_names : list of str, optional
        Classes fixed elsewhere (a trained model's outputs): marker events are mapped onto
        them in this order.

    Raises
    ------
    DataError
        Missing files, no marker events, no trial structure (each message says the fix).
    """
    files = recording_files(spec)
    recs = [read_recording(f, stream=spec.stream, fs=spec.fs_hz, target_stream=spec.target_stream)
            for f in files]
    keeps: list[np.ndarray | None] = [None] * len(recs)
    events: list[np.ndarray | None] = [None] * len(recs)
    if spec.markers is not None:
        class_names, keep_list, event_list = _marker_labels(spec, recs, class_names)
        keeps, events = list(keep_list), list(event_list)
    else:
        class_names = class_names or _class_names(recs)
    trials, offset = [], 0
    for i, rec in enumerate(recs):
        ids = _trial_ids(spec, rec, i, len(recs), events[i])
        ids = np.where(ids >= 0, ids + offset, -1) if _rule(spec, rec, len(recs)) != "files" else ids
        offset = max(offset, int(ids.max(initial=0)))
        keep = keeps[i]
        trials.append(ids if keep is None else np.where(keep, ids, -1))
    if spec.shuffle_trials is not None:
        rng = np.random.default_rng(spec.shuffle_trials)
        pairs = [shuffle_trials(r, t, rng) for r, t in zip(recs, trials, strict=True)]
        recs, trials = [p[0] for p in pairs], [p[1] for p in pairs]
    return LabelledSet(recordings=recs, trials=trials, class_names=class_names, files=files)


def shuffle_trials(rec: Recording, trial: np.ndarray, rng: np.random.Generator
                   ) -> tuple[Recording, np.ndarray]:
    """The recording with its trials in a random order (each trial's samples kept together).

    For recordings stored sorted by condition (the monkey reach trials are sorted by reach
    direction): concatenated as stored, a decoder with memory could learn the condition from
    the previous trials, which a live session in random order would not give it.

    Parameters
    ----------
    rec : Recording
    trial : int64 (n_samples,)
        Trial id of each sample.
    rng : numpy Generator

    Returns
    -------
    Recording
        Samples and targets reordered; ``t`` re-stamped as ``i / fs``; per-sample arrays in
        ``meta`` reordered alike.
    trial : int64 (n_samples,)
    """
    ids = np.unique(trial)
    idx = np.concatenate([np.flatnonzero(trial == i) for i in rng.permutation(ids)])
    n = rec.n_samples
    meta = {k: (v[idx] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v)
            for k, v in rec.meta.items()}
    meta.pop("trial_starts", None)
    meta["trial_order"] = "shuffled"
    out = Recording(x=rec.x[idx], fs=rec.fs, y=None if rec.y is None else rec.y[idx],
                    channel_names=list(rec.channel_names), target_names=list(rec.target_names), meta=meta)
    return out, np.asarray(trial)[idx]
