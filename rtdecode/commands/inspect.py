"""``rtdecode inspect RECORDING``: what a recording holds, and a starter training config for it.

Lists the streams of an XDF file (name, type, channels, rate, samples), the samples read,
targets and markers (distinct texts with counts, and the start/end pattern they follow).
``--write-config FILE.toml`` writes a training config for this recording: a classifier
(the classic TD-feature LDA, exported) when it has marker events, a regressor (a Wiener
filter) when it has targets; edit it (class names, chain, the cue-to-movement delay) and run
``rtdecode train FILE.toml``.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["describe", "register", "run", "starter_config"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` sub-command."""
    p = sub.add_parser("inspect", help="show what a recording holds; write a starter training config")
    p.add_argument("recording", help="recording (.xdf .csv .npz .mat or a dataset folder)")
    p.add_argument("--stream", default=None, help="XDF stream of samples (default: most channels)")
    p.add_argument("--fs", type=float, default=None, help="rate for files that do not store one, Hz")
    p.add_argument("--write-config", default=None, metavar="FILE.toml",
                   help="write a starter training config")
    p.set_defaults(func=run)


def _xdf_streams(path: Path) -> list[dict[str, Any]]:
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    out = []
    for s in streams:
        info = s["info"]
        out.append({"name": info["name"][0], "type": info["type"][0],
                    "channels": int(info["channel_count"][0]), "rate_hz": float(info["nominal_srate"][0]),
                    "format": info["channel_format"][0], "samples": len(s["time_stamps"])})
    return out


def describe(path: Path, stream: str | None = None, fs: float | None = None) -> dict[str, Any]:
    """The facts of a recording: streams (XDF), samples, targets, markers and their pattern."""
    from rtdecode.io.events import find_events, guess_marker_labels
    from rtdecode.io.readers import read_recording

    rec = read_recording(path, stream=stream, fs=fs)
    times, texts = rec.meta.get("markers", (np.zeros(0), []))
    guess = guess_marker_labels(times, list(texts))
    labels = sorted({e.label for e in find_events((times, list(texts)), guess)}) if guess else []
    out: dict[str, Any] = {
        "path": str(path), "rate_hz": rec.fs, "channels": rec.n_channels, "samples": rec.n_samples,
        "duration_s": round(rec.duration_s, 2), "channel_names": rec.channel_names,
        "stream": rec.meta.get("stream_name"), "stream_type": rec.meta.get("stream_type"),
        "targets": list(rec.target_names), "has_trial_ids": rec.meta.get("trial_id") is not None,
        "markers": dict(Counter(texts).most_common()),
        "marker_streams": sorted(rec.meta.get("marker_streams", {})),
        "marker_labels": guess.model_dump(exclude_defaults=True) if guess else None,
        "event_labels": labels,
    }
    if path.suffix.lower() in (".xdf", ".xdfz"):
        out["streams"] = _xdf_streams(path)
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def _table(name: str, fields: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items() if v is not None)


def _chain(info: dict[str, Any]) -> list[dict[str, Any]]:
    """A causal high-pass for EMG-like streams (20 Hz), nothing for count / already-processed streams."""
    kind = str(info.get("stream_type") or "").lower()
    if kind in ("spikes", "markers") or info["rate_hz"] < 100:
        return []
    return [{"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": 20.0}]


def starter_config(info: dict[str, Any], name: str, config_dir: Path) -> str:
    """A training config for the recording ``info`` describes (see :func:`describe`)."""
    import os

    rel = os.path.relpath(Path(info["path"]).resolve(), config_dir.resolve())
    pairs = bool(info["marker_labels"]) and "end" in info["marker_labels"]
    n_events = sum(info["markers"].values()) // (2 if pairs else 1)
    head = (f"# Starter config written by `rtdecode inspect {info['path']}`:\n"
            "# check the class names, the chain and (for cued movements) data.markers.offset_s,\n"
            "# the delay from cue to movement.\n"
            f'name = "{name}"\ndescription = "{info["channels"]} ch @ {info["rate_hz"]:g} Hz"\n'
            "threads = 1\n\n")
    data = {"path": rel, "stream": info["stream"]}
    chain = {"chain": _chain(info)}
    if info["marker_labels"]:
        per = max(1, round(n_events / 10))
        body = _table("data", {**data, "trials": "events", "events_per_trial": per}) + "\n"
        classes = {lab: lab for lab in info["event_labels"]}  # rename the classes here
        body += _table("data.markers", {**info["marker_labels"], "classes": classes, "rest": "rest"}) + "\n"
        body += _table("preprocessing", chain) + "\n"
        body += _table("protocol", {"kind": "loto", "baselines": ["lda"], "lda_window_s": 0.2,
                                    "lda_threshold": 0.0, "smoothing_s": [0.1, 0.2, 0.5]}) + "\n"
        body += _table("export", {"model": "lda", "all_data": True})
        return head + body
    if not info["targets"]:
        raise DataError(f"{info['path']} has neither markers nor targets",
                        "record a marker stream of events, or a target stream (then set data.target_stream)")
    blocks = {} if info["has_trial_ids"] else {"trial_block_s": 5.0}
    body = _table("data", {**data, **blocks}) + "\n"
    body += _table("preprocessing", {**chain, "standardize": True})
    body += "\n" + _table("protocol", {"kind": "ab", "controls": ["linear"], "linear_history_s": 0.3})
    body += '\n[[models]]\nname = "gamma"\nkind = "GammaCNN"\n\n'
    body += _table("export", {"model": "control_linear"})
    return head + body


def run(args: argparse.Namespace) -> int:
    """Print the recording's facts; write the starter config when asked."""
    import json

    path = Path(args.recording)
    info = describe(path, args.stream, args.fs)
    print(json.dumps({k: v for k, v in info.items() if k != "channel_names"}, indent=1))
    if args.write_config:
        target = Path(args.write_config)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(starter_config(info, path.stem, target.parent), encoding="utf-8")
        print(f"wrote {target}; edit it, then: rtdecode train {target}")
    return 0
