"""Loaders for the specific datasets in ``../shared/data`` (one function per layout).

Each loader turns one dataset's own file layout into a :class:`~rtdecode.io.recording.Recording`
with physical units, targets and provenance in ``meta``. Generic formats (.npz, .csv, .xdf)
and the suffix dispatch live in :mod:`rtdecode.io.readers`; :func:`detect_mat_layout` tells
which loader a ``.mat`` file needs from its variable names alone (no data is loaded).

Supported ``.mat`` layouts
--------------------------
``otb``
    OTBiolab+ "export to .mat" (the openhdemg sample file): ``Data``, ``SamplingFrequency``,
    ``Description`` (and ``Time``).
``flexemg``
    flexemg HD-sEMG gesture trials (Moin et al. 2018): ``raw``, ``p``.
``ninapro``
    NinaPro DB1 (Atzori et al. 2014): ``emg``, ``glove``, ``restimulus``.
``myo``
    Myo armband grasp-force datalog (Dutra et al. 2021): ``emg``, ``Force``.
``tms_epochs``
    Epoched single-pulse TMS-EMG traces (the Oxford FDI input-output set, Sorkhabi et al.
    2022): ``Values`` (samples x pulses, mV), one file per intensity; a subject's files
    together are read by :func:`read_tms_session`.

The bin-level monkey reach data (a folder of CSV files) is read by :func:`read_monkey_reach`.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import DataError
from rtdecode.io.recording import Recording

logger = logging.getLogger(__name__)

#: Variable names that identify each supported ``.mat`` layout (all must be present).
MAT_LAYOUTS: dict[str, tuple[str, ...]] = {
    "otb": ("Data", "SamplingFrequency"),
    "flexemg": ("raw", "p"),
    "ninapro": ("emg", "glove", "restimulus"),
    "myo": ("emg", "Force"),
    "tms_epochs": ("Values",),
}

#: Files that make a folder the monkey reach dataset.
MONKEY_FEATURES = "monkey_features_300.csv"
MONKEY_TARGETS = "monkey_targets_300.csv"

FLEXEMG_FS_HZ = 1000.0
NINAPRO_FS_HZ = 100.0
MYO_FS_HZ = 200.0
#: Oxford FDI set: 10 kHz traces, the pulse at 0.1 s into each 1-s trace.
TMS_EPOCHS_FS_HZ = 10000.0
TMS_EPOCHS_PULSE_S = 0.1
_TMS_FILE = re.compile(r"^(S\d+)_Magstim_(\d+(?:\.\d+)?)percent\.mat$")
MONKEY_FS_HZ = 50.0
OTB_GRID_SHAPE = (13, 5)


def describe_mat_layouts() -> str:
    """One line per supported ``.mat`` layout: its name and required variables."""
    return "; ".join(f"{name}: {', '.join(keys)}" for name, keys in MAT_LAYOUTS.items())


def detect_mat_layout(keys: set[str] | list[str]) -> str | None:
    """Return the layout name whose variables are all in ``keys`` (``None`` if none matches).

    Parameters
    ----------
    keys : set of str
        Variable names of a ``.mat`` file (``scipy.io.whosmat``).
    """
    found = set(keys)
    for name, required in MAT_LAYOUTS.items():
        if set(required) <= found:
            return name
    return None


def load_mat(path: Path, variable_names: list[str] | None = None) -> dict[str, Any]:
    """``scipy.io.loadmat`` (squeezed arrays, attribute-style structs); errors as DataError."""
    import scipy.io as sio

    try:
        return sio.loadmat(path, squeeze_me=True, struct_as_record=False,
                           variable_names=variable_names)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5)
        raise DataError(f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read ({err})",
                        "save it with `save(..., '-v7')` in MATLAB or convert it to .npz") from err
    except Exception as err:  # scipy raises many types for corrupt files
        raise DataError(f"cannot read MATLAB file {path}: {err}",
                        "check that the file is a complete MATLAB v5/v7 .mat file") from err


def _require(m: dict[str, Any], key: str, path: Path) -> Any:
    if key not in m:
        raise DataError(f"{path} has no variable {key!r} (found: {sorted(_public(m))})",
                        "use the original, unmodified dataset file")
    return m[key]


def _public(m: dict[str, Any]) -> list[str]:
    return [k for k in m if not k.startswith("__")]


def _rate_or(fs: float | None, default: float, path: Path, dataset: str) -> float:
    """Use ``fs`` when given (logging a difference from the documented rate), else ``default``."""
    if fs is None:
        return default
    if float(fs) != default:
        logger.warning("%s: using fs=%g Hz instead of the documented %g Hz of %s",
                       path, fs, default, dataset)
    return float(fs)


# --------------------------------------------------------------------------- OTBiolab+ export
def read_otb_mat(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read an OTBiolab+ ``.mat`` export (e.g. the openhdemg sample file).

    Parameters
    ----------
    path : str or Path
        The ``.mat`` file.
    fs : float, optional
        Must match ``SamplingFrequency`` when given (the file states its rate).

    Returns
    -------
    Recording
        ``x`` float32 (n, 64) monopolar HD-sEMG, µV; ``y`` float32 (n, 1) force, %MVC
        (when the file has a force column); ``t`` s from the first sample. ``meta`` holds
        ``grid_shape`` (13, 5), ``time_offset_s`` (the file's first time), and
        ``mu_discharges`` (one int64 array of discharge sample indices per decomposed motor
        unit column).
    """
    path = Path(path)
    m = load_mat(path)
    data = np.asarray(_require(m, "Data", path))
    if data.dtype == object:  # unsqueezed cell
        data = np.asarray(data.reshape(-1)[0])
    if data.ndim != 2:
        raise DataError(f"{path}: 'Data' has shape {data.shape}, expected (n_samples, n_columns)",
                        "use the original OTBiolab+ export")
    file_fs = float(np.asarray(_require(m, "SamplingFrequency", path)).reshape(-1)[0])
    if fs is not None and float(fs) != file_fs:
        raise DataError(f"{path} states a rate of {file_fs:g} Hz, but fs={fs:g} Hz was given",
                        "leave fs unset for files that store their sample rate")
    desc = [str(np.asarray(d).reshape(-1)[0]) if np.size(d) else ""
            for d in np.atleast_1d(m.get("Description", np.array([], dtype=object)))]
    if len(desc) != data.shape[1]:
        desc = [f"col{i}" for i in range(data.shape[1])]

    def is_emg(name: str) -> bool:
        return name.endswith("[uV]") and "ecomposition" not in name and "Source" not in name

    emg_cols = [i for i, d in enumerate(desc) if is_emg(d)]
    if not emg_cols:  # unknown descriptions: the OTB default of 64 grid channels first
        emg_cols = list(range(min(64, data.shape[1])))
    force_cols = [i for i, d in enumerate(desc) if "MVC" in d or "acquired data" in d]
    mu_cols = [i for i, d in enumerate(desc)
               if "Decomposition of" in d and "Source" not in d
               and np.isin(data[:, i], (0.0, 1.0)).all()]

    time = m.get("Time")
    offset = 0.0
    if time is not None:
        time = np.asarray(time)
        if time.dtype == object:
            time = np.asarray(time.reshape(-1)[0])
        time = time.reshape(-1).astype(np.float64)
        if time.shape[0] == data.shape[0]:
            offset = float(time[0])
    y = data[:, force_cols[:1]] if force_cols else None
    return Recording(
        x=data[:, emg_cols], fs=file_fs, y=y,
        channel_names=[desc[i] for i in emg_cols] if len(emg_cols) else [],
        target_names=["force"] if y is not None else [],
        meta={
            "file": str(path), "dataset": "otb", "stream_type": "EMG",
            "units": {"x": "uV", "force": "%MVC"},
            "grid_shape": OTB_GRID_SHAPE if len(emg_cols) == 64 else None,
            "time_offset_s": offset,
            "mu_discharges": [np.flatnonzero(data[:, i] > 0.5) for i in mu_cols],
        },
    )


# --------------------------------------------------------------------------- flexemg
def _find_arraymap(path: Path, levels: int = 3) -> Path | None:
    """``arraymap.mat`` next to the trial file or in one of its parent folders."""
    for folder in list(path.parents)[:levels]:
        candidate = folder / "arraymap.mat"
        if candidate.is_file():
            return candidate
    return None


def flexemg_labels(sequence: np.ndarray, n_samples: int, timegest: int = 5000,
                   timerest: int = 5000) -> np.ndarray:
    """Per-sample class labels of one flexemg trial.

    Parameters
    ----------
    sequence : int (4,)
        Order of the gestures in the trial (``p.sequence``, 1-based classes).
    n_samples : int
        Samples in the trial.
    timegest, timerest : int
        Samples per gesture and of the initial rest (``p.timegest``, ``p.timerest``).

    Returns
    -------
    labels : int64 (n_samples,)
        0 = rest on ``[0, timerest)`` and after the last gesture; ``sequence[j]`` on
        ``[timerest + j*timegest, timerest + (j+1)*timegest)``.
    """
    labels = np.zeros(n_samples, dtype=np.int64)
    for j, cls in enumerate(np.atleast_1d(sequence).astype(np.int64)):
        i0 = timerest + j * timegest
        labels[max(0, i0):max(0, min(n_samples, i0 + timegest))] = cls
    return labels


def read_flexemg_mat(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read one flexemg HD-sEMG gesture trial (``raw``, ``p``).

    Parameters
    ----------
    path : str or Path
        A trial file, e.g. ``data/001-Session1Train/001-001.mat``.
    fs : float, optional
        Sample rate, Hz (default 1000 Hz, the documented rate; the file does not store it).

    Returns
    -------
    Recording
        ``x`` float32 (n, 64) electrode voltages, mV (ADC counts minus each channel's mean,
        times ``p.lsbmV``); ``y`` float32 (n, 1) class per sample: 0 rest, 1..4 the gesture
        (``p.labelnames[k-1]``) in the order of ``p.sequence``. ``meta`` holds
        ``label_names`` (rest first), ``sequence``, and, when ``arraymap.mat`` is found in
        the file's folder or a parent, ``arraymap`` int (16, 4) of 1-based channel numbers
        in physical layout and ``grid_shape`` (16, 4).
    """
    path = Path(path)
    m = load_mat(path)
    raw = np.asarray(_require(m, "raw", path))
    p = _require(m, "p", path)
    if raw.ndim != 2 or raw.shape[1] < 64:
        raise DataError(f"{path}: 'raw' has shape {raw.shape}, expected (n_samples, >= 64)",
                        "use an original flexemg trial file")
    try:
        lsb_mv = float(p.lsbmV)
        sequence = np.atleast_1d(np.asarray(p.sequence)).astype(np.int64)
        timegest = int(getattr(p, "timegest", 5000))
        timerest = int(getattr(p, "timerest", 5000))
        label_names = [str(s) for s in np.atleast_1d(p.labelnames)]
    except AttributeError as err:
        raise DataError(f"{path}: struct 'p' lacks a field ({err})",
                        "use an original flexemg trial file (p.lsbmV, p.sequence, ...)") from err
    counts = raw[:, :64].astype(np.float64)
    x = (counts - counts.mean(axis=0)) * lsb_mv
    labels = flexemg_labels(sequence, raw.shape[0], timegest, timerest)
    meta: dict[str, Any] = {
        "file": str(path), "dataset": "flexemg", "stream_type": "EMG",
        "units": {"x": "mV", "label": "class"},
        "label_names": ["Rest", *label_names],
        "sequence": sequence.tolist(),
        "grid_shape": None,
        "arraymap": None,
    }
    amap_path = _find_arraymap(path)
    if amap_path is not None:
        amap = np.asarray(load_mat(amap_path, ["arraymap"]).get("arraymap"))
        if amap.ndim == 2 and amap.size == 64:
            meta["arraymap"] = amap.astype(np.int64)
            meta["grid_shape"] = tuple(int(s) for s in amap.shape)
    return Recording(x=x, fs=_rate_or(fs, FLEXEMG_FS_HZ, path, "flexemg"), y=labels,
                     channel_names=[f"e{i + 1}" for i in range(64)], target_names=["label"],
                     meta=meta)


# --------------------------------------------------------------------------- NinaPro DB1
def read_ninapro_mat(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read a NinaPro DB1 file (``emg``, ``glove``, ``restimulus``).

    Parameters
    ----------
    path : str or Path
        E.g. ``S1_A1_E1.mat``.
    fs : float, optional
        Sample rate, Hz (default 100 Hz, the DB1 rate; the file does not store it).

    Returns
    -------
    Recording
        ``x`` float32 (n, 10) RMS sEMG (device units, V); ``y`` float32 (n, 23): the 22
        CyberGlove sensor values (raw units) then ``restimulus`` (movement class, 0 = rest).
        ``meta["repetition"]`` int (n,) is ``rerepetition`` (0 = rest) for splitting.
    """
    path = Path(path)
    m = load_mat(path)
    emg = np.asarray(_require(m, "emg", path), dtype=np.float64)
    glove = np.asarray(_require(m, "glove", path), dtype=np.float64)
    restim = np.asarray(_require(m, "restimulus", path)).reshape(-1)
    if emg.ndim != 2 or glove.ndim != 2 or not (emg.shape[0] == glove.shape[0] == restim.size):
        raise DataError(f"{path}: emg {emg.shape}, glove {glove.shape} and restimulus "
                        f"{restim.shape} do not have one row per sample",
                        "use an original NinaPro DB1 file")
    rerep = m.get("rerepetition", m.get("repetition"))
    y = np.column_stack([glove, restim.astype(np.float64)])
    return Recording(
        x=emg, fs=_rate_or(fs, NINAPRO_FS_HZ, path, "NinaPro DB1"), y=y,
        channel_names=[f"emg{i + 1}" for i in range(emg.shape[1])],
        target_names=[f"glove{i + 1}" for i in range(glove.shape[1])] + ["restimulus"],
        meta={
            "file": str(path), "dataset": "ninapro_db1", "stream_type": "EMG",
            "units": {"x": "V (RMS)", "glove": "raw sensor units", "restimulus": "class"},
            "repetition": None if rerep is None else np.asarray(rerep).reshape(-1).astype(np.int64),
            "subject": int(np.asarray(m.get("subject", -1)).reshape(-1)[0]),
            "exercise": int(np.asarray(m.get("exercise", -1)).reshape(-1)[0]),
        },
    )


# --------------------------------------------------------------------------- Myo grasp force
def read_myo_mat(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read a Myo armband grasp-force datalog (``emg``, ``Force``).

    Returns
    -------
    Recording
        ``x`` float32 (n, 8) Myo sEMG (raw int8 units, or -1..1 in the normalised files);
        ``y`` float32 (n, 1) FSR force (ADC units, or 0..1 in the normalised files); fs 200 Hz
        unless the file stores ``Ts``.
    """
    path = Path(path)
    m = load_mat(path, ["emg", "Force", "Ts"])
    emg = np.asarray(_require(m, "emg", path), dtype=np.float64)
    force = np.asarray(_require(m, "Force", path), dtype=np.float64).reshape(-1)
    if emg.ndim != 2 or emg.shape[0] != force.size:
        raise DataError(f"{path}: emg {emg.shape} and Force {force.shape} differ in length",
                        "use an original datalog file")
    default = MYO_FS_HZ
    if "Ts" in m:
        default = 1.0 / float(np.asarray(m["Ts"]).reshape(-1)[0])
    normalised = bool(np.abs(emg).max(initial=0.0) <= 1.0)
    return Recording(
        x=emg, fs=_rate_or(fs, default, path, "the Myo datalog"), y=force,
        channel_names=[f"myo{i + 1}" for i in range(emg.shape[1])], target_names=["force"],
        meta={"file": str(path), "dataset": "myo_grasp_force", "stream_type": "EMG",
              "units": {"x": "normalised" if normalised else "Myo int8 units",
                        "force": "normalised" if normalised else "FSR ADC units"}},
    )


# --------------------------------------------------------------------------- TMS epochs
def _tms_intensity(path: Path) -> float | None:
    """Intensity (% MSO) from an Oxford file name ``S<k>_Magstim_<I>percent.mat``, or None."""
    m = _TMS_FILE.match(path.name)
    return float(m.group(2)) if m else None


def _tms_traces(path: Path) -> np.ndarray:
    v = np.asarray(_require(load_mat(path, ["Values"]), "Values", path), dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 2:
        raise DataError(f"{path}: 'Values' has shape {v.shape}, expected (n_samples, n_pulses)",
                        "use the original dataset file")
    return v


def _epochs_recording(traces: list[np.ndarray], intensities: list[float | None], fs: float,
                      files: list[Path], meta: dict[str, Any]) -> Recording:
    """Concatenate (n_samples, n_pulses) trace blocks into one channel with a marker per pulse."""
    x = np.concatenate([v.T.reshape(-1) for v in traces])[:, None]
    n_trace = traces[0].shape[0]
    pulse_at = int(round(TMS_EPOCHS_PULSE_S * fs))
    times, labels, k = [], [], 0
    for v, intensity in zip(traces, intensities, strict=True):
        for _ in range(v.shape[1]):
            marker: dict[str, Any] = {"pulse": k}
            if intensity is not None:
                marker.update(intensity=intensity, unit="%MSO")
            times.append((k * n_trace + pulse_at) / fs)
            labels.append(json.dumps(marker))
            k += 1
    return Recording(x=x, fs=fs, channel_names=["FDI"], meta={
        "file": str(files[0]) if len(files) == 1 else str(files[0].parent),
        "files": [str(f) for f in files], "stream_type": "EMG", "units": {"x": "mV"},
        "markers": (np.asarray(times), labels), "pulse_intensity": [
            i for v, i in zip(traces, intensities, strict=True) for _ in range(v.shape[1])],
        **meta})


def read_tms_epochs_mat(path: str | Path, *, fs: float | None = None) -> Recording:
    """Read one file of epoched single-pulse TMS traces (the Oxford FDI input-output set).

    Parameters
    ----------
    path : str or Path
        ``S<k>_Magstim_<I>percent.mat`` holding ``Values`` float (n_samples, n_pulses), mV:
        one trace per pulse, the pulse at 0.1 s.
    fs : float, optional
        Rate, Hz (default: the documented 10 kHz).

    Returns
    -------
    Recording
        The traces one after the other as one channel ``FDI`` (float32 (n_samples *
        n_pulses, 1), mV). ``meta["markers"]`` holds one marker per pulse: times (s from the
        first sample) and JSON labels ``{"pulse": k, "intensity": I, "unit": "%MSO"}``
        (intensity from the file name, when it follows the pattern); ``pulse_intensity``
        lists the intensity of each pulse.
    """
    path = Path(path)
    rate = _rate_or(fs, TMS_EPOCHS_FS_HZ, path, "the Oxford TMS-EMG set")
    return _epochs_recording([_tms_traces(path)], [_tms_intensity(path)], rate, [path],
                             {"dataset": "oxford_fdi_io"})


def tms_session_files(folder: str | Path) -> dict[str, list[Path]]:
    """The Oxford-layout files of a folder by subject, each list sorted by intensity."""
    by_subject: dict[str, list[Path]] = {}
    for f in sorted(Path(folder).glob("*.mat")):
        m = _TMS_FILE.match(f.name)
        if m:
            by_subject.setdefault(m.group(1), []).append(f)
    for files in by_subject.values():
        files.sort(key=lambda f: _tms_intensity(f) or 0.0)
    return dict(sorted(by_subject.items(), key=lambda kv: int(kv[0][1:])))


def read_tms_session(folder: str | Path, subject: str, *, fs: float | None = None) -> Recording:
    """Read every intensity of one subject of an Oxford-layout folder, in increasing intensity.

    Parameters
    ----------
    folder : str or Path
        Folder of ``S<k>_Magstim_<I>percent.mat`` files.
    subject : str
        ``"S1"``, ``"S2"``, ...
    fs : float, optional
        Rate, Hz (default 10 kHz).

    Returns
    -------
    Recording
        As :func:`read_tms_epochs_mat`, all files concatenated; pulses numbered from 0
        across files; ``meta["subject"]``.
    """
    folder = Path(folder)
    files = tms_session_files(folder).get(subject)
    if not files:
        raise DataError(f"{folder} has no files of subject {subject!r} "
                        f"(subjects: {list(tms_session_files(folder)) or 'none'})",
                        "pass a subject that has S<k>_Magstim_<I>percent.mat files")
    rate = _rate_or(fs, TMS_EPOCHS_FS_HZ, folder, "the Oxford TMS-EMG set")
    traces = [_tms_traces(f) for f in files]
    if len({v.shape[0] for v in traces}) != 1:
        raise DataError(f"subject {subject!r} in {folder} has traces of different lengths",
                        "use the original dataset files")
    return _epochs_recording(traces, [_tms_intensity(f) for f in files], rate, files,
                             {"dataset": "oxford_fdi_io", "subject": subject})


MAT_READERS = {
    "otb": read_otb_mat,
    "flexemg": read_flexemg_mat,
    "ninapro": read_ninapro_mat,
    "myo": read_myo_mat,
    "tms_epochs": read_tms_epochs_mat,
}


# --------------------------------------------------------------------------- monkey reach
def is_monkey_reach_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds the binned monkey reach CSV files."""
    folder = Path(folder)
    return (folder / MONKEY_FEATURES).is_file() and (folder / MONKEY_TARGETS).is_file()


def _loadtxt(path: Path) -> np.ndarray:
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read CSV {path}: {err}",
                        "use the original comma-separated file without a header") from err


def read_monkey_reach(folder: str | Path) -> Recording:
    """Read the binned monkey center-out reach data (a folder of CSV files).

    Parameters
    ----------
    folder : str or Path
        Folder with ``monkey_features_300.csv`` (spike counts, one row per 20-ms bin) and
        ``monkey_targets_300.csv`` (x, y, z hand position in mm, direction, trial id).

    Returns
    -------
    Recording
        ``x`` float32 (n_bins, 98) spike counts per 20-ms bin; fs 50 Hz; ``y`` float32
        (n_bins, 4): ``px, py`` mean hand position (mm) and ``vx, vy`` velocity (mm/s), the
        backward finite difference within each trial (0 at each trial's first bin). ``meta``
        holds ``trial_id`` int (n_bins,), ``direction`` int (n_bins,) in 1..8, ``pz_mm``
        float (n_bins,) and ``trial_starts`` int (n_trials,) (first bin of each trial). Trials
        are concatenated: ``t`` is ``i / fs`` and does not show the gaps between trials.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"monkey reach folder {folder} does not exist",
                        "pass the folder that holds monkey_features_300.csv")
    if not is_monkey_reach_folder(folder):
        raise DataError(f"{folder} lacks {MONKEY_FEATURES} and/or {MONKEY_TARGETS}",
                        "pass the bmi_monkeyreach_binned folder")
    x = _loadtxt(folder / MONKEY_FEATURES)
    targets = _loadtxt(folder / MONKEY_TARGETS)
    if targets.shape[0] != x.shape[0] or targets.shape[1] < 5:
        raise DataError(f"{folder}: features {x.shape} and targets {targets.shape} do not match",
                        "targets must have 5 columns (x, y, z, direction, trial id), "
                        "one row per feature row")
    pos = targets[:, :2]
    trial = targets[:, 4].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
    vel = np.zeros_like(pos)
    vel[1:] = np.diff(pos, axis=0) * MONKEY_FS_HZ
    vel[starts] = 0.0
    return Recording(
        x=x, fs=MONKEY_FS_HZ, y=np.column_stack([pos, vel]),
        channel_names=[f"unit{i + 1}" for i in range(x.shape[1])],
        target_names=["px", "py", "vx", "vy"],
        meta={
            "file": str(folder), "dataset": "bmi_monkeyreach_binned", "stream_type": "Spikes",
            "units": {"x": "spike count per 20-ms bin", "px": "mm", "py": "mm",
                      "vx": "mm/s", "vy": "mm/s"},
            "trial_id": trial, "direction": targets[:, 3].astype(np.int64),
            "pz_mm": targets[:, 2].copy(), "trial_starts": starts,
        },
    )
