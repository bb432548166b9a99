"""Read recording files (.npz, .csv, .xdf, .mat, .h5 sessions, dataset folders) into one Recording type.

:func:`read_recording` dispatches on the suffix (or on a folder's contents); the generic
formats are read here, the dataset-specific ``.mat`` / CSV-folder layouts in
:mod:`rtdecode.io.datasets`.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import DataError
from rtdecode.io import datasets
from rtdecode.io.recording import Recording

logger = logging.getLogger(__name__)

#: Suffixes :func:`read_recording` understands.
SUPPORTED_SUFFIXES = (".npz", ".csv", ".xdf", ".xdfz", ".mat", ".h5")

_TIME_COLUMNS = ("time", "t")
_TARGET_PREFIX = "y_"


def read_recording(path: str | Path, *, stream: str | None = None, fs: float | None = None,
                   target_stream: str | None = None) -> Recording:
    """Read a recording file into a :class:`Recording`.

    Parameters
    ----------
    path : str or Path
        A ``.npz``, ``.csv``, ``.xdf``/``.xdfz`` or ``.mat`` file, a session file recorded by
        the daemon (``.h5``, its served input), or a dataset folder (the binned monkey reach
        CSV folder, or a folder of TMS sessions with ``stream``).
    stream : str, optional
        XDF: name (or, failing that, type) of the stream to read (default: the numeric
        stream with the most channels and a nominal rate > 0). A folder of TMS sessions
        (the Oxford FDI layout): the subject, e.g. ``"S1"``.
    fs : float, optional
        Sample rate, Hz, for files that do not store one (a CSV without a time column, an
        irregular-rate XDF stream, datasets with a documented rate). A file that stores its
        rate (``.npz`` with ``fs``, XDF nominal rate, OTB export) rejects a different value.
    target_stream : str, optional
        XDF only: a numeric stream whose channels become the targets (see :func:`read_xdf`).

    Returns
    -------
    Recording
        ``x`` float32 (n_samples, n_channels) in physical units, ``fs`` Hz, ``t`` s from the
        first sample, optional ``y`` targets, names and provenance in ``meta``.

    Raises
    ------
    DataError
        The path does not exist, cannot be read, or has an unsupported layout.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"recording {path} does not exist",
                        "check the path (relative paths are from the current directory)")
    if path.is_dir():
        return _read_dataset_folder(path, stream, fs)
    if (stream is not None or target_stream is not None) and path.suffix.lower() not in (".xdf", ".xdfz"):
        raise DataError(f"a stream name ({stream or target_stream!r}) was given for {path}, which is not XDF",
                        "only pass --stream/stream= (or a target stream) for .xdf files")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path, fs=fs)
    if suffix == ".csv":
        return read_csv(path, fs=fs)
    if suffix in (".xdf", ".xdfz"):
        return read_xdf(path, stream=stream, fs=fs, target_stream=target_stream)
    if suffix == ".mat":
        return read_mat(path, fs=fs)
    if suffix == ".h5":  # a session recorded by the daemon ([record]); needs the record extra
        from rtdecode.record.reader import read_session

        if fs is not None:
            raise DataError(f"fs={fs} given for the session file {path}, which stores its rate",
                            "leave fs unset for session files")
        return read_session(path).to_recording()
    raise DataError(f"unsupported recording format {path.suffix!r} ({path})",
                    f"convert it to one of {', '.join(SUPPORTED_SUFFIXES)}")


def _read_dataset_folder(path: Path, stream: str | None, fs: float | None) -> Recording:
    """A dataset folder: the binned monkey reach CSVs, or one subject's TMS sessions (``stream``)."""
    if datasets.is_monkey_reach_folder(path):
        if fs is not None:
            raise DataError(f"fs={fs} given for {path}, whose bins are 20 ms (50 Hz)",
                            "leave fs unset for this dataset")
        return datasets.read_monkey_reach(path)
    subjects = list(datasets.tms_session_files(path))
    if subjects:
        if stream is None:
            raise DataError(f"{path} holds TMS sessions of several subjects ({subjects})",
                            "name one with stream=/--stream, e.g. --stream S1")
        return datasets.read_tms_session(path, stream, fs=fs)
    raise DataError(f"{path} is a folder of no supported dataset",
                    f"pass a file ({', '.join(SUPPORTED_SUFFIXES)}) or the monkey reach "
                    f"folder with {datasets.MONKEY_FEATURES}")


# --------------------------------------------------------------------------- .npz
def read_npz(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read a ``.npz`` recording.

    Arrays: ``x`` (n_samples, n_channels) physical units and ``fs`` (Hz, scalar); optional
    ``y`` (n_samples,) or (n_samples, n_targets), ``t`` (n_samples,) s, ``channel_names``,
    ``target_names`` (string arrays), ``trial`` (n_samples,) int trial ids (kept as
    ``meta["trial_id"]``) and ``meta_json`` (a JSON object as a string).

    Parameters
    ----------
    path : str or Path
        The file.
    fs : float, optional
        Rate, Hz, when the file has no ``fs``; must equal ``fs`` when it has one.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as err:
        raise DataError(f"cannot read .npz file {path}: {err}",
                        "write it with numpy.savez (no object arrays) holding `x` and `fs`") \
            from err
    if "x" not in arrays:
        raise DataError(f"{path} has no array `x` (found: {sorted(arrays)})",
                        "store the samples as `x` (n_samples, n_channels) and the rate as `fs`")
    file_fs = float(arrays["fs"].reshape(-1)[0]) if "fs" in arrays else None
    if file_fs is None and fs is None:
        raise DataError(f"{path} has no `fs` and no rate was given",
                        "store the rate as `fs` (Hz) in the file or pass fs=/--fs")
    if file_fs is not None and fs is not None and float(fs) != file_fs:
        raise DataError(f"{path} states fs={file_fs:g} Hz, but fs={fs:g} Hz was given",
                        "leave fs unset for files that store their sample rate")
    meta: dict[str, Any] = {}
    if "meta_json" in arrays:
        try:
            meta = dict(json.loads(str(arrays["meta_json"])))
        except (ValueError, TypeError) as err:
            raise DataError(f"{path}: `meta_json` is not a JSON object ({err})",
                            "store meta as json.dumps(dict)") from err
    meta.update(file=str(path), format="npz")
    x = arrays["x"]
    if x.ndim == 1:
        x = x[:, None]
    if "trial" in arrays:
        trial = np.asarray(arrays["trial"]).reshape(-1).astype(np.int64)
        if trial.size != x.shape[0]:
            raise DataError(f"{path}: `trial` has {trial.size} entries for {x.shape[0]} samples",
                            "give one trial id per sample")
        meta["trial_id"] = trial
    return Recording(
        x=x, fs=file_fs if file_fs is not None else float(fs),  # type: ignore[arg-type]
        t=_relative(arrays.get("t")), y=arrays.get("y"),
        channel_names=[str(s) for s in arrays.get("channel_names", [])],
        target_names=[str(s) for s in arrays.get("target_names", [])],
        meta=meta,
    )


def _relative(t: np.ndarray | None) -> np.ndarray | None:
    if t is None:
        return None
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    return t - t[0] if t.size else t


# --------------------------------------------------------------------------- .csv
def read_csv(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read a ``.csv`` recording with a header row of column names.

    A ``time`` or ``t`` column (s) gives the timestamps; the rate is then the inverse median
    step unless ``fs`` is given. Without a time column ``fs`` is required. Columns named
    ``y_*`` are targets (the prefix is dropped from the target name); all other columns are
    channels. The delimiter is ``,`` (``;`` or tab are detected from the header).

    Parameters
    ----------
    path : str or Path
        The file.
    fs : float, optional
        Sample rate, Hz.
    """
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            header_line = fh.readline()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read CSV {path}: {err}", "check the file") from err
    delimiter = next((d for d in (",", ";", "\t") if d in header_line), ",")
    names = [n.strip() for n in next(csv.reader([header_line], delimiter=delimiter), [])]
    if not names or not any(names):
        raise DataError(f"{path} has no header row of column names",
                        "add a first row such as `time,ch1,ch2,y_force`")
    try:
        data = np.loadtxt(path, delimiter=delimiter, skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise DataError(f"{path}: non-numeric value below the header ({err})",
                        "every row after the header must hold numbers only") from err
    if data.shape[0] == 0:
        raise DataError(f"{path} has a header but no samples", "add data rows")
    if data.shape[1] != len(names):
        raise DataError(f"{path}: {len(names)} names in the header but {data.shape[1]} columns",
                        "give one header name per column")
    lower = [n.lower() for n in names]
    time_col = next((lower.index(c) for c in _TIME_COLUMNS if c in lower), None)
    target_cols = [i for i, n in enumerate(lower) if n.startswith(_TARGET_PREFIX)]
    chan_cols = [i for i in range(len(names)) if i != time_col and i not in target_cols]
    if not chan_cols:
        raise DataError(f"{path} has no channel columns (only time / y_* columns)",
                        "add at least one channel column")
    t = None
    if time_col is not None:
        t = data[:, time_col]
        if fs is None:
            steps = np.diff(t)
            if steps.size == 0 or not np.median(steps) > 0:
                raise DataError(f"{path}: cannot derive a rate from the `{names[time_col]}` "
                                "column (fewer than 2 samples or non-increasing times)",
                                "give increasing times in seconds or pass fs=/--fs")
            fs = 1.0 / float(np.median(steps))
        t = t - t[0]
    elif fs is None:
        raise DataError(f"{path} has no `time`/`t` column and no rate was given",
                        "add a `time` column in seconds or pass fs=/--fs")
    return Recording(
        x=data[:, chan_cols], fs=float(fs), t=t,
        y=data[:, target_cols] if target_cols else None,
        channel_names=[names[i] for i in chan_cols],
        target_names=[names[i][len(_TARGET_PREFIX):] for i in target_cols],
        meta={"file": str(path), "format": "csv"},
    )


# --------------------------------------------------------------------------- .xdf
def _info(stream: dict[str, Any], key: str, default: str = "") -> str:
    value = stream["info"].get(key, [default])
    return str(value[0]) if isinstance(value, list) and value else str(value or default)


def _xdf_channel_names(stream: dict[str, Any]) -> list[str]:
    """Channel labels from ``desc/channels/channel/label`` (empty list when absent)."""
    try:
        desc = stream["info"]["desc"][0]
        channels = desc["channels"][0]["channel"]
        return [str(ch["label"][0]) for ch in channels]
    except (KeyError, IndexError, TypeError):
        return []


def _describe_streams(streams: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{_info(s, 'name')!r} (type {_info(s, 'type')!r}, {_info(s, 'channel_count')} ch, "
        f"{_info(s, 'nominal_srate')} Hz, {_info(s, 'channel_format')})" for s in streams)


def _load_xdf(path: Path) -> list[dict[str, Any]]:
    import pyxdf

    try:
        streams, _header = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    except Exception as err:  # pyxdf raises assorted errors on corrupt files
        raise DataError(f"cannot read XDF file {path}: {err}",
                        "check that the file is a complete XDF recording") from err
    return list(streams)


def _pick_stream(streams: list[dict[str, Any]], stream: str | None, path: Path) -> dict[str, Any]:
    """The named (or typed) numeric stream, or the default: most channels with a rate > 0."""
    numeric = [s for s in streams if _info(s, "channel_format") != "string"]
    if stream is not None:
        chosen = ([s for s in streams if _info(s, "name") == stream]
                  or [s for s in streams if _info(s, "type") == stream])
        if not chosen:
            raise DataError(f"{path} has no stream named or typed {stream!r}; streams: "
                            f"{_describe_streams(streams)}", "pick one of the listed names")
        if _info(chosen[0], "channel_format") == "string":
            raise DataError(f"stream {stream!r} in {path} holds strings (markers), not samples",
                            f"pick a numeric stream: {_describe_streams(numeric)}")
        return chosen[0]
    regular = [s for s in numeric if float(_info(s, "nominal_srate", "0")) > 0 and len(s["time_stamps"]) > 0]
    if not regular:
        raise DataError(f"{path} has no numeric stream with a nominal rate > 0; streams: "
                        f"{_describe_streams(streams)}",
                        "name the stream to read with stream=/--stream and give fs")
    return max(regular, key=lambda s: (int(_info(s, "channel_count", "0")), len(s["time_stamps"])))


def _xdf_markers(streams: list[dict[str, Any]], t0: float
                 ) -> tuple[tuple[np.ndarray, list[str]], dict[str, tuple[np.ndarray, list[str]]]]:
    """Every string stream's markers (times relative to ``t0``): merged, and per stream name."""
    per: dict[str, tuple[np.ndarray, list[str]]] = {}
    for s in streams:
        if _info(s, "channel_format") == "string" and len(s["time_stamps"]):
            times = np.asarray(s["time_stamps"], dtype=np.float64) - t0
            per[_info(s, "name")] = (times, [str(row[0]) if len(row) else "" for row in s["time_series"]])
    times = np.concatenate([v[0] for v in per.values()]) if per else np.zeros(0)
    labels = [lab for v in per.values() for lab in v[1]]
    order = np.argsort(times, kind="stable")
    return (times[order], [labels[i] for i in order]), per


def _xdf_targets(streams: list[dict[str, Any]], name: str, t0: float, t: np.ndarray,
                 path: Path) -> tuple[np.ndarray, list[str]]:
    """A numeric stream's channels linearly interpolated at the samples' times ``t`` (s from ``t0``)."""
    sel = _pick_stream(streams, name, path)
    stamps = np.asarray(sel["time_stamps"], dtype=np.float64) - t0
    if stamps.size < 2:
        raise DataError(f"target stream {name!r} in {path} has {stamps.size} samples",
                        "record the targets as a numeric stream with at least two samples")
    values = np.asarray(sel["time_series"], dtype=np.float64).reshape(stamps.size, -1)
    order = np.argsort(stamps, kind="stable")
    y = np.column_stack([np.interp(t, stamps[order], values[order, k]) for k in range(values.shape[1])])
    names = _xdf_channel_names(sel)
    if len(names) != values.shape[1]:
        names = [f"{_info(sel, 'name')}{k}" for k in range(values.shape[1])]
    outside = int(np.sum((t < stamps.min()) | (t > stamps.max())))
    if outside:
        logger.warning("%s: %d samples lie outside the target stream's time span; their targets hold "
                       "the nearest target value", path, outside)
    return y, names


def read_xdf(path: str | Path, *, stream: str | None = None, fs: float | None = None,
             target_stream: str | None = None) -> Recording:
    """Read one stream of an XDF file, keeping its real LSL timestamps.

    Parameters
    ----------
    path : str or Path
        ``.xdf`` or ``.xdfz`` file.
    stream : str, optional
        Name of the stream, or its type when no name matches. Default: the numeric stream
        with the most channels and a nominal rate > 0.
    fs : float, optional
        Rate, Hz, for a stream with an irregular (0) nominal rate; must match the nominal
        rate otherwise.
    target_stream : str, optional
        A numeric stream (e.g. force, kinematics) whose channels become the targets ``y``,
        linearly interpolated at the samples' LSL times.

    Returns
    -------
    Recording
        ``x`` float32 (n, C) as recorded; ``fs`` the nominal rate; ``t`` the recorded LSL
        timestamps (clock-synchronised, not dejittered) minus the first one, s. ``meta``
        holds ``stream_name``, ``stream_type`` (the original type), ``t0_lsl`` (first
        timestamp), ``effective_srate``, ``markers``: ``(times float64 (m,) s relative to
        the first sample, labels list of str)`` from every string stream in the file, and
        ``marker_streams``: the same per string stream name.
    """
    path = Path(path)
    streams = _load_xdf(path)
    sel = _pick_stream(streams, stream, path)
    stamps = np.asarray(sel["time_stamps"], dtype=np.float64)
    if stamps.size == 0:
        raise DataError(f"stream {_info(sel, 'name')!r} in {path} has no samples", "pick another stream")
    nominal = float(_info(sel, "nominal_srate", "0"))
    if nominal > 0 and fs is not None and float(fs) != nominal:
        raise DataError(f"stream {_info(sel, 'name')!r} in {path} has a nominal rate of "
                        f"{nominal:g} Hz, but fs={fs:g} Hz was given",
                        "leave fs unset for streams with a nominal rate")
    rate = nominal if nominal > 0 else fs
    if rate is None:
        raise DataError(f"stream {_info(sel, 'name')!r} in {path} has an irregular rate",
                        "give the rate to play it at with fs=/--fs")
    t0 = float(stamps[0])
    markers, per_stream = _xdf_markers(streams, t0)
    x = np.asarray(sel["time_series"], dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y, y_names = _xdf_targets(streams, target_stream, t0, stamps - t0, path) if target_stream else (None, [])
    names = _xdf_channel_names(sel)
    return Recording(
        x=x, fs=float(rate), t=stamps - t0, y=y, target_names=y_names,
        channel_names=names if len(names) == x.shape[1] else [],
        meta={
            "file": str(path), "format": "xdf", "stream_name": _info(sel, "name"),
            "stream_type": _info(sel, "type") or "EEG", "t0_lsl": t0,
            "effective_srate": float(sel["info"].get("effective_srate", 0.0) or 0.0),
            "markers": markers, "marker_streams": per_stream,
        },
    )


# --------------------------------------------------------------------------- .mat
def mat_layout(path: str | Path) -> str | None:
    """The dataset layout of a ``.mat`` file from its variable names (``None``: not a recording)."""
    import scipy.io as sio

    path = Path(path)
    try:
        keys = [name for name, _shape, _cls in sio.whosmat(path)]
    except NotImplementedError as err:
        raise DataError(f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read",
                        "save it with `save(..., '-v7')` in MATLAB or convert it to .npz") from err
    except Exception:  # whosmat trips over MATLAB objects some files hold: load it instead
        keys = [k for k in datasets.load_mat(path) if not k.startswith("__")]
    return datasets.detect_mat_layout(keys)


def read_mat(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read a ``.mat`` file of one of the supported dataset layouts.

    The layout is recognised from the variable names (see
    :data:`rtdecode.io.datasets.MAT_LAYOUTS`); each layout's loader documents its output.

    Raises
    ------
    DataError
        The file cannot be read, or its variables match no supported layout (the message
        lists the variables found and the layouts supported).
    """
    path = Path(path)
    layout = mat_layout(path)
    if layout is None:
        keys = [k for k in datasets.load_mat(path) if not k.startswith("__")]
        raise DataError(f"{path} has an unknown .mat layout; variables found: {sorted(keys)}; "
                        f"supported layouts: {datasets.describe_mat_layouts()}",
                        "convert the file to .npz (x, fs, optional y) or .csv")
    logger.debug("%s: .mat layout %s", path, layout)
    return datasets.MAT_READERS[layout](path, fs=fs)
