"""The session file writer: its own process, draining the shared-memory ring into HDF5 parts.

A separate process, so the disk work never holds the daemon's interpreter lock: the loop
only copies bytes into the ring (:mod:`rtdecode.record.ring`). This process (at
``record.writer_priority``: by default it runs only on CPU time nothing else wants) wakes
every :data:`WAKE_S`, takes every queued record, appends it to the part's tables and flushes
the file every ``flush_interval_s``. The file is in HDF5 SWMR mode: after each flush it is
consistent on disk, so ``kill -9`` of both processes loses at most the last interval. When
the daemon dies (its pid is no longer this process' parent) the writer drains what is
queued, closes the file and exits. A part is closed and the next one opened once it passes
``rotate_mb`` or ``rotate_s``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode import __version__
from rtdecode.record import layout
from rtdecode.record.config import RecordConfig
from rtdecode.record.ring import (
    C_DROP_CHUNKS,
    C_DROP_FRAMES,
    C_DROP_SAMPLES,
    C_FAILED,
    C_FLUSHES,
    C_FRAMES,
    C_PART,
    C_READY,
    C_SAMPLES,
    C_STOP,
    C_WRITER_PID,
    FRAME,
    ShmRing,
)
from rtdecode.sinks.peek import peek
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

#: Longest sleep of the writer between drains, s (shorter when ``flush_interval_s`` / 4 is).
WAKE_S = 0.1
#: Text slots of the ring: the current file, the writer's error.
TEXT_PATH, TEXT_ERROR = 0, 1


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
            rows = cfg.chunk_rows * (16 if key == "messages/payload" else 1)
            self.ds[key] = f.create_dataset(key, shape=(0, *row), maxshape=(None, *row), dtype=dtype,
                                            chunks=(rows, *row), compression=comp if big else None)
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
    """Drain a :class:`~rtdecode.record.ring.ShmRing` into rotating HDF5 parts.

    Parameters
    ----------
    cfg : RecordConfig
    info : SessionInfo
    ring : ShmRing
        Its control slots carry the loop's drop counters (written into ``/recorder/drops``
        when they change) and receive this writer's counters.
    """

    def __init__(self, cfg: RecordConfig, info: SessionInfo, ring: ShmRing) -> None:
        from rtdecode.lsl import pylsl

        self.cfg = cfg
        self.info = info
        self.ring = ring
        self.clock = pylsl.local_clock
        self.part: _Part | None = None
        self.part_no = -1
        self.samples = 0
        self.frames = 0
        self.t_flush = time.monotonic()
        self._last_drops = (0, 0, 0)
        self._stale_since_chunk = False

    def rotate(self) -> None:
        """Close the current part (if any) and open the next one."""
        if self.part is not None:
            self.part.close()
        self.part_no += 1
        d = Path(self.cfg.dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / layout.part_name(self.info.stem, self.part_no)
        self.part = _Part(path, self.info, self.part_no, self.cfg)
        self.ring.set_text(TEXT_PATH, str(path.resolve()))
        self.ring.ctl[C_PART] = self.part_no
        logger.info("recording to %s", path)

    def drain(self, final: bool = False) -> None:
        """Write every queued record; flush (and rotate) when due or ``final``."""
        assert self.part is not None
        chunks, frames, resumed = [], [], []
        for it in self.ring.take_all():  # in publish order: a chunk after STALE frames ends an outage
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
        ctl = self.ring.ctl
        ctl[C_SAMPLES], ctl[C_FRAMES] = self.samples, self.frames
        now = time.monotonic()
        if now - self.t_flush >= self.cfg.flush_interval_s or final:
            self._write_drops()
            self.part.f.flush()
            ctl[C_FLUSHES] += 1
            self.t_flush = now
            if not final and self._due_rotation(now):
                self.rotate()

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
        for i, (_, x, _t, first, flags, t_rec) in enumerate(chunks):
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
        for i, (_, frame, t_rec) in enumerate(frames):
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
        ctl = self.ring.ctl
        now = (int(ctl[C_DROP_CHUNKS]), int(ctl[C_DROP_SAMPLES]), int(ctl[C_DROP_FRAMES]))
        if now != self._last_drops:
            self._last_drops = now
            assert self.part is not None
            self.part.append("recorder/drops", np.array([(self.clock(), *now)], layout.DROP_DTYPE))

    def close(self) -> None:
        """Write what is left and close the part."""
        if self.part is not None:
            self.drain(final=True)
            self.part.close()
            self.part = None


def marks_stale(frame: bytes) -> bool:
    """Whether ``frame`` is an estimate flagged STALE (the daemon's safe value while silent)."""
    h = peek(frame)
    return h is not None and h.kind == 1 and bool(h.flags & Flags.STALE)


def _set_priority(priority: str) -> None:
    """Apply ``record.writer_priority`` to this process; a refusal is logged, not fatal."""
    try:
        if priority == "idle":
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif priority == "low":
            os.nice(10)
    except (OSError, AttributeError) as exc:  # a sandbox or another OS: record at equal priority
        logger.warning("record: could not lower the writer's priority (%s): %s", priority, exc)


def writer_main(ring_name: str, lock: Any, cfg_json: str, info: SessionInfo, parent_pid: int) -> None:
    """Entry point of the writer process (``multiprocessing`` spawn target)."""
    ring = ShmRing.attach(ring_name, lock)
    ring.ctl[C_WRITER_PID] = os.getpid()
    writer = None
    try:
        cfg = RecordConfig.model_validate_json(cfg_json)
        _set_priority(cfg.writer_priority)
        writer = SessionWriter(cfg, info, ring)
        writer.rotate()
        ring.ctl[C_READY] = 1
        wake_s = min(WAKE_S, cfg.flush_interval_s / 4)
        while not ring.ctl[C_STOP] and os.getppid() == parent_pid:
            time.sleep(wake_s)
            writer.drain()
        writer.close()
    except Exception as exc:  # disk full, permissions: the daemon reports it and goes on
        ring.set_text(TEXT_ERROR, f"{type(exc).__name__}: {exc}")
        ring.ctl[C_FAILED] = 1
        logger.error("session writer failed:\n%s", traceback.format_exc())
        if writer is not None and writer.part is not None:
            try:  # keep what was flushed readable
                writer.part.f.close()
            except Exception:  # noqa: BLE001 - already failing
                pass
    finally:
        ring.close()
