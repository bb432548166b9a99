"""Write a Recording to the generic formats :mod:`rtdecode.io.readers` reads back."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import DataError
from rtdecode.io.recording import Recording

logger = logging.getLogger(__name__)


def _json_meta(meta: dict) -> str:
    """The JSON-able part of ``meta`` (arrays and other objects are left out)."""
    kept = {}
    for key, value in meta.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return json.dumps(kept)


def write_npz(recording: Recording, path: str | Path) -> Path:
    """Write ``recording`` as ``.npz`` (``x``, ``fs``, ``t``, ``y``, names, ``meta_json``).

    Only the JSON-able entries of ``meta`` are kept. Returns the path written.
    """
    path = Path(path)
    arrays: dict[str, Any] = {
        "x": recording.x, "fs": np.float64(recording.fs), "t": np.asarray(recording.t),
        "channel_names": np.array(recording.channel_names, dtype=str),
        "meta_json": np.array(_json_meta(recording.meta)),
    }
    if recording.y is not None:
        arrays["y"] = recording.y
        arrays["target_names"] = np.array(recording.target_names, dtype=str)
    try:
        with path.open("wb") as fh:
            np.savez(fh, **arrays)
    except OSError as err:
        raise DataError(f"cannot write {path}: {err}", "check the folder exists and is writable") \
            from err
    return path


def write_csv(recording: Recording, path: str | Path) -> Path:
    """Write ``recording`` as ``.csv``: ``time``, the channels, then ``y_<target>`` columns.

    Returns the path written.
    """
    path = Path(path)
    names = ["time", *recording.channel_names]
    cols = [np.asarray(recording.t, dtype=np.float64)[:, None], recording.x.astype(np.float64)]
    if recording.y is not None:
        names += [f"y_{n}" for n in recording.target_names]
        cols.append(recording.y.astype(np.float64))
    if any("," in n for n in names):
        raise DataError(f"a column name contains a comma: {names}",
                        "rename the channels / targets before writing CSV")
    try:
        np.savetxt(path, np.hstack(cols), delimiter=",", header=",".join(names), comments="",
                   fmt="%.9g")
    except OSError as err:
        raise DataError(f"cannot write {path}: {err}", "check the folder exists and is writable") \
            from err
    return path
