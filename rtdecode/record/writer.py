"""The session file writer: a thread that drains the recorder's queue into HDF5 parts.

The loop thread only appends to a bounded ``deque`` (:class:`RecordQueue`); this thread
wakes every few milliseconds, takes everything queued, appends it to the part's tables
in small writes (the interpreter is shared with the loop, so no long call holds it), and
flushes the file every ``flush_interval_s``. The file is in HDF5 SWMR mode: after each
flush it is consistent on disk, so ``kill -9`` loses at most the last interval.
A part is closed and the next one opened once it passes ``rotate_mb`` or ``rotate_s``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode import __version__
from rtdecode.record import layout
from rtdecode.record.config import RecordConfig
from rtdecode.sinks.peek import peek
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

#: Item kinds in the queue.
CHUNK, FRAME = 0, 1
#: Longest sleep of the writer between drains, s.
WAKE_S = 0.02


class RecordQueue:
    """A bounded single-producer / single-consumer queue, counted in items and bytes.

    ``put`` (loop thread) and ``take_all`` (writer thread) never block; each byte counter is
    written by one thread only, so no lock is needed.
    """

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._q: deque[tuple] = deque()
        self.bytes_in = 0
        self.bytes_out = 0

    def put(self, item: tuple, nbytes: int) -> bool:
        """Append ``item`` unless the queue is full; False when it was refused."""
        if len(self._q) >= self.max_items or self.bytes_in - self.bytes_out + nbytes > self.max_bytes:
            return False
        self._q.append(item)
        self.bytes_in += nbytes
        return True

    def take_all(self) -> list[tuple]:
        """Everything queued now, oldest first."""
        out = []
        q = self._q
        while q:
            out.append(q.popleft())
        self.bytes_out += sum(int(it[-1]) for it in out)
        return out

    def __len__(self) -> int:
        return len(self._q)


@dataclass
class Drops:
    """Overflow counters (loop thread writes them, the writer reads them)."""

    chunks: int = 0
    samples: int = 0
    frames: int = 0

    def row(self, t: float) -> tuple:
        return (t, self.chunks, self.samples, self.frames)


@dataclass
class SessionInfo:
    """What every part records besides the data: config, stream, models."""

    config: dict[str, Any]
    stream: dict[str, Any]
    models: dict[str, dict[str, Any]]
    session_id: str
    stem: str
    attrs: dict[str, Any] = field(default_factory=dict)


class _Part:
    """One open HDF5 part and its append positions."""

    def __init__(self, path: Path, info: SessionInfo, part: int, cfg: RecordConfig) -> None:
        import h5py

        self.path = path
        self.f = h5py.File(path, "w", libver="latest")
        f = self.f
        f.attrs.update({"schema": layout.SCHEMA, "schema_version": layout.SCHEMA_VERSION,
                        "rtdecode_version": __version__, "session_id": info.session_id,
                        "part": part, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "flush_interval_s": cfg.flush_interval_s,
                        "config_json": json.dumps(info.config),
                        "stream_json": json.dumps(info.stream)})
        for name, m in info.models.items():
            g = f.create_group(f"models/{name}")
            g.attrs.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in m.items()})
        comp = None if cfg.compression == "none" else cfg.compression
        self.ds = {}
        for key, (dtype, row) in layout.tables(int(info.stream["n_channels"])).items():
            big = key in ("input/samples", "messages/payload")
            self.ds[key] = f.create_dataset(key, shape=(0, *row), maxshape=(None, *row), dtype=dtype,
                                            chunks=(cfg.chunk_rows * (16 if key == "messages/payload" else 1),
                                                    *row),
                                            compression=comp if big else None)
        self.n = {key: 0 for key in self.ds}
        self.topics: dict[str, int] = {}
        f.swmr_mode = True
        self.t_open = time.monotonic()
        self.bytes = 0

    def append(self, key: str, rows: np.ndarray) -> int:
        """Append rows to a table; returns the row index of the first one."""
        ds, i = self.ds[key], self.n[key]
        k = rows.shape[0]
        if k:
            ds.resize(i + k, axis=0)
            ds[i:i + k] = rows
            self.n[key] = i + k
            self.bytes += rows.nbytes
        return i

    def topic_id(self, topic: str) -> int:
        tid = self.topics.get(topic)
        if tid is None:
            tid = self.topics[topic] = len(self.topics)
            self.append("messages/topics", np.array([topic.encode("utf-8")], layout.TOPIC_DTYPE))
        return tid

    def close(self) -> None:
        if self.f.id.valid:
            self.f.flush()
            self.f.close()


class SessionWriter:
    """Drain a :class:`RecordQueue` into rotating HDF5 parts, in its own thread.

    Parameters
    ----------
    cfg : RecordConfig
    info : SessionInfo
    queue : RecordQueue
    drops : Drops
        The loop's overflow counters, written into ``/recorder/drops`` when they change.
    clock : callable
        The LSL local clock (time of the drop rows), s.
    """

    def __init__(self, cfg: RecordConfig, info: SessionInfo, queue: RecordQueue, drops: Drops,
                 clock: Callable[[], float]) -> None:
        self.cfg = cfg
        self.clock = clock
        self.info = info
        self.queue = queue
        self.drops = drops
        self.part: _Part | None = None
        self.part_no = -1
        self.paths: list[Path] = []
        self.samples = 0
        self.frames = 0
        self.flushes = 0
        self.t_flush = time.monotonic()
        self.error: str | None = None
        self._last_drops = (0, 0, 0)
        self._stale_since_chunk = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the first part (errors raise here, at start-up) and start the thread."""
        self._rotate()
        self._thread = threading.Thread(target=self._run, name="rtdecode-record-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, close the part, join the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.part is not None:
            self.part.close()
            self.part = None

    def _rotate(self) -> None:
        if self.part is not None:
            self.part.close()
        self.part_no += 1
        d = Path(self.cfg.dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / layout.part_name(self.info.stem, self.part_no)
        self.part = _Part(path, self.info, self.part_no, self.cfg)
        self.paths.append(path)
        logger.info("recording to %s", path)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._stop.wait(WAKE_S)
                self.drain()
            self.drain()
        except Exception as exc:  # disk full, permissions: reported in the status, never raised
            self.error = f"{type(exc).__name__}: {exc}"
            logger.error("session recording stopped: %s; the daemon goes on without it "
                         "(queued items are dropped and counted)", self.error)

    def drain(self) -> None:
        """Write everything queued; flush and rotate when due (writer thread)."""
        items = self.queue.take_all()
        assert self.part is not None
        chunks, frames, resumed = [], [], []
        for it in items:  # in publish order: a chunk after STALE frames ends an outage
            if it[0] == FRAME:
                frames.append(it)
                self._stale_since_chunk |= marks_stale(it[1])
            else:
                chunks.append(it)
                resumed.append(self._stale_since_chunk)
                self._stale_since_chunk = False
        if frames:
            self._write_frames(frames)
        if chunks:
            self._write_chunks(chunks, resumed)
        now = time.monotonic()
        if now - self.t_flush >= self.cfg.flush_interval_s or self._stop.is_set():
            self._write_drops()
            self.part.f.flush()
            self.flushes += 1
            self.t_flush = now
            if self._due_rotation(now):
                self._rotate()

    def _due_rotation(self, now: float) -> bool:
        assert self.part is not None
        cfg = self.cfg
        return bool((cfg.rotate_mb is not None and self.part.bytes >= cfg.rotate_mb * 1e6)
                    or (cfg.rotate_s is not None and now - self.part.t_open >= cfg.rotate_s))

    def _write_chunks(self, chunks: list[tuple], resumed: list[bool]) -> None:
        part = self.part
        assert part is not None
        rows = np.zeros(len(chunks), layout.CHUNK_DTYPE)
        start = part.n["input/samples"]
        for i, (_, x, _t, first, flags, t_rec, _nb) in enumerate(chunks):
            rows[i] = (start, x.shape[0], flags, first, t_rec, resumed[i])
            start += x.shape[0]
        part.append("input/samples", np.concatenate([c[1] for c in chunks]))
        part.append("input/t_lsl", np.concatenate([c[2] for c in chunks]))
        part.append("input/chunks", rows)
        self.samples += int(rows["n"].sum())

    def _write_frames(self, frames: list[tuple]) -> None:
        part = self.part
        assert part is not None
        rows = np.zeros(len(frames), layout.MESSAGE_DTYPE)
        payloads = []
        offset = part.n["messages/payload"]
        for i, (_, frame, t_rec, _nb) in enumerate(frames):
            h = peek(frame)
            if h is None:  # not an rtdecode frame: keep it whole under the topic "?"
                tid, body, hdr = part.topic_id("?"), frame, (0, 0, 0, 0, 0.0, 0.0)
            else:
                tid, body = part.topic_id(h.topic), frame[h.payload_start:]
                hdr = (h.kind, h.flags, h.count, h.seq, h.t_source, h.t_publish)
            rows[i] = (tid, *hdr, t_rec, offset, len(body))
            payloads.append(body)
            offset += len(body)
        part.append("messages/payload", np.frombuffer(b"".join(payloads), np.uint8))
        part.append("messages/index", rows)
        self.frames += len(frames)

    def _write_drops(self) -> None:
        d = self.drops
        now = (d.chunks, d.samples, d.frames)
        if now != self._last_drops:
            self._last_drops = now
            assert self.part is not None
            self.part.append("recorder/drops", np.array([d.row(self.clock())], layout.DROP_DTYPE))


def marks_stale(frame: bytes) -> bool:
    """Whether ``frame`` is an estimate flagged STALE (the daemon's safe value while silent)."""
    h = peek(frame)
    return h is not None and h.kind == 1 and bool(h.flags & Flags.STALE)
