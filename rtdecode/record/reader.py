"""Read session files (one part or a whole rotated series) back into arrays.

Files are opened in SWMR read mode, so a file whose writer was killed (``kill -9``, a
crash) opens as it was at its last flush.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import DataError
from rtdecode.io.recording import Recording
from rtdecode.record import layout
from rtdecode.sinks.protocol import KIND_ESTIMATE, KIND_STATUS, STATUS_TOPIC

logger = logging.getLogger(__name__)


def _h5py() -> Any:
    try:
        import h5py
    except ModuleNotFoundError as exc:
        raise DataError("reading session files needs h5py", "pip install 'rtdecode[record]'") from exc
    return h5py


@dataclass
class Session:
    """A recorded session (one part or consecutive parts, concatenated).

    Attributes
    ----------
    paths : list of Path
    attrs : dict
        Root attributes of the first part (schema, session_id, part, created_utc, ...).
    config : dict
        The daemon's config as JSON.
    stream : dict
        Input stream facts: name, type, rate_hz, n_channels, channel_names, source_id.
    models : dict of str to dict
        Per decoder: topic, path, sha256, metadata (dict).
    samples : float32 (n, C)
    t_lsl : float64 (n,)
    chunks : CHUNK_DTYPE (m,)
        ``start`` is a row of :attr:`samples` (across parts).
    index : MESSAGE_DTYPE (k,)
        ``offset`` is into :attr:`payload` (across parts); ``topic`` into :attr:`topics`.
    payload : uint8 (bytes,)
    topics : list of str
    drops : DROP_DTYPE (d,)
    """

    paths: list[Path]
    attrs: dict[str, Any]
    config: dict[str, Any]
    stream: dict[str, Any]
    models: dict[str, dict[str, Any]]
    samples: np.ndarray
    t_lsl: np.ndarray
    chunks: np.ndarray
    index: np.ndarray
    payload: np.ndarray
    topics: list[str]
    drops: np.ndarray = field(default_factory=lambda: np.zeros(0, layout.DROP_DTYPE))

    @property
    def dropped(self) -> dict[str, int]:
        """Items the recorder had to drop (queue full): chunks, samples, frames."""
        if self.drops.size == 0:
            return {"chunks": 0, "samples": 0, "frames": 0}
        last = self.drops[-1]
        return {k: int(last[k]) for k in ("chunks", "samples", "frames")}

    @property
    def complete(self) -> bool:
        """True when nothing was dropped and the series starts at part 0."""
        return int(self.attrs.get("part", 0)) == 0 and not any(self.dropped.values())

    def topic_rows(self, topic: str, kind: int | None = None) -> np.ndarray:
        """Rows of :attr:`index` on ``topic`` (and of ``kind``), in publish order."""
        if topic not in self.topics:
            return np.zeros(0, np.int64)
        sel = self.index["topic"] == self.topics.index(topic)
        if kind is not None:
            sel &= self.index["kind"] == kind
        return np.flatnonzero(sel)

    def estimates(self, topic: str) -> dict[str, np.ndarray]:
        """Every estimate published on ``topic``: seq, flags, t_source, t_publish, values (m, K)."""
        rows = self.index[self.topic_rows(topic, KIND_ESTIMATE)]
        k = int(rows["count"][0]) if rows.size else 0
        if rows.size and (rows["count"] != k).any():
            raise DataError(f"topic {topic!r} changes its value count within the session",
                            "read its frames one by one with payload_of()")
        cols = rows["offset"][:, None].astype(np.int64) + np.arange(4 * k, dtype=np.int64)[None, :]
        values = self.payload[cols].reshape(rows.size, 4 * k).copy().view("<f4") if rows.size else \
            np.zeros((0, k), np.float32)
        return {"seq": rows["seq"], "flags": rows["flags"], "t_source": rows["t_source"],
                "t_publish": rows["t_publish"], "values": values.reshape(rows.size, k)}

    def payload_of(self, row: int) -> bytes:
        """Payload bytes of message row ``row`` (any kind)."""
        r = self.index[row]
        return self.payload[int(r["offset"]):int(r["offset"]) + int(r["size"])].tobytes()

    def statuses(self) -> list[dict]:
        """Every status message, decoded, in publish order."""
        return [json.loads(self.payload_of(int(i)))
                for i in self.topic_rows(STATUS_TOPIC, KIND_STATUS)]

    def estimate_topics(self) -> list[str]:
        """Topics that carried estimates."""
        kinds = self.index["kind"] == KIND_ESTIMATE
        return [self.topics[i] for i in np.unique(self.index["topic"][kinds])]

    def to_recording(self) -> Recording:
        """The recorded input as a :class:`Recording` (for replay / offline predict)."""
        if self.samples.shape[0] == 0:
            raise DataError(f"session {self.paths[0]} has no input samples",
                            "record a run that received input")
        st = self.stream
        return Recording(x=self.samples, fs=float(st["rate_hz"]), t=self.t_lsl - self.t_lsl[0],
                         channel_names=list(st.get("channel_names") or []),
                         meta={"file": str(self.paths[0]), "format": "rtdecode-session",
                               "stream_type": st.get("type") or "EEG",
                               "session_id": self.attrs.get("session_id")})


def _read_part(path: Path) -> dict[str, Any]:
    h5py = _h5py()
    try:
        f = h5py.File(path, "r", swmr=True)
    except OSError as exc:
        raise DataError(f"cannot open session file {path}: {exc}",
                        "give a .h5 file written by the daemon's [record] section") from None
    with f:
        attrs = dict(f.attrs)
        if attrs.get("schema") != layout.SCHEMA:
            raise DataError(f"{path} is not an rtdecode session file (schema {attrs.get('schema')!r})",
                            "give a file written by the daemon's [record] section")
        if int(attrs.get("schema_version", 0)) != layout.SCHEMA_VERSION:
            raise DataError(f"{path} has session schema {attrs.get('schema_version')}, this rtdecode "
                            f"reads {layout.SCHEMA_VERSION}", "use the rtdecode version that wrote it")
        out = {key: f[key][()] for key in layout.tables(1)}
        out["models"] = {name: {k: (v if k in ("path", "sha256", "topic") else json.loads(v))
                                for k, v in g.attrs.items()} for name, g in f.get("models", {}).items()}
        out["attrs"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
    return out


def read_session(paths: str | Path | list[str | Path]) -> Session:
    """Read one session file, or consecutive parts of one session (in part order).

    Raises
    ------
    DataError
        A file is missing, not a session file, or the parts are not one session in order.
    """
    plist = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    for p in plist:
        if not p.exists():
            raise DataError(f"session file {p} does not exist", "check the path")
    parts = sorted((_read_part(p) | {"path": p} for p in plist), key=lambda d: d["attrs"]["part"])
    first = parts[0]["attrs"]
    for a, b in zip(parts, parts[1:], strict=False):
        if b["attrs"]["session_id"] != first["session_id"] or b["attrs"]["part"] != a["attrs"]["part"] + 1:
            raise DataError(f"{b['path']} does not continue {a['path']} (session or part number differs)",
                            "give consecutive parts of one session")
    return _concat(parts)


def _concat(parts: list[dict[str, Any]]) -> Session:
    topics: list[str] = []
    idx, chunks = [], []
    n_samples = n_payload = 0
    for p in parts:
        names = [t.decode("utf-8") for t in p["messages/topics"]]
        remap = np.array([_topic_index(topics, t) for t in names] or [0], np.uint16)
        m = p["messages/index"].copy()
        m["topic"] = remap[m["topic"]] if m.size else m["topic"]
        m["offset"] += n_payload
        c = p["input/chunks"].copy()
        c["start"] += n_samples
        idx.append(m)
        chunks.append(c)
        n_samples += p["input/samples"].shape[0]
        n_payload += p["messages/payload"].shape[0]
    a = parts[0]["attrs"]
    return Session(paths=[p["path"] for p in parts], attrs=a, config=json.loads(a["config_json"]),
                   stream=json.loads(a["stream_json"]), models=parts[0]["models"],
                   samples=np.concatenate([p["input/samples"] for p in parts]),
                   t_lsl=np.concatenate([p["input/t_lsl"] for p in parts]),
                   chunks=np.concatenate(chunks), index=np.concatenate(idx),
                   payload=np.concatenate([p["messages/payload"] for p in parts]), topics=topics,
                   drops=np.concatenate([p["recorder/drops"] for p in parts]))


def _topic_index(topics: list[str], name: str) -> int:
    if name not in topics:
        topics.append(name)
    return topics.index(name)
