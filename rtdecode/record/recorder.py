"""The session recorder: a daemon plug-in that queues every input chunk and published frame.

Loop side only: :meth:`Recorder.on_chunk` and :meth:`Recorder.on_sent` copy what they are
given into a bounded shared-memory ring (:mod:`rtdecode.record.ring`; a few µs, no I/O,
no waiting). When the ring is full the item is dropped and counted — in the status message
under ``record`` and in the file's ``/recorder/drops`` — never silently. The disk work runs
in a separate writer process (:mod:`rtdecode.record.writer`), so it never competes with the
loop for the interpreter lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import multiprocessing
import os
import time
import uuid
from pathlib import Path
from typing import Any

from rtdecode.errors import SinkError
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
    ShmRing,
)
from rtdecode.types import Chunk

logger = logging.getLogger(__name__)

#: Longest wait for the writer process to create the first file at start-up, s.
START_TIMEOUT_S = 60.0
#: Longest wait for the writer to write what is queued and close the file at shutdown, s.
STOP_TIMEOUT_S = 60.0


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hex), to tie a recording to the exact model file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_writable(d: Path) -> None:
    """Fail at start-up, with the fix, when the session folder cannot be written."""
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".rtdecode-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SinkError(f"record.dir {d} is not writable: {exc}",
                        "point record.dir at a folder this user can write (with room for the session)") \
            from exc


class Recorder:
    """Record the session (plug-in ``record``).

    Parameters
    ----------
    cfg : RecordConfig
        The ``[record]`` section.
    """

    name = "record"

    def __init__(self, cfg: RecordConfig) -> None:
        self.cfg = cfg
        self.ring: ShmRing | None = None
        self.process: Any = None
        self.drops = {"chunks": 0, "samples": 0, "frames": 0}
        self._clock: Any = time.monotonic
        self._final: dict[str, Any] | None = None
        self._error_logged = False

    def _session_info(self, ctx: Any) -> Any:
        from rtdecode.record.writer import SessionInfo

        models = {}
        for d in ctx.config.decoders:
            meta = ctx.models.get(d.name)
            models[d.name] = {"topic": d.out_topic, "path": str(d.model), "sha256": file_sha256(d.model),
                              "metadata_json": meta.to_json() if meta is not None else "{}"}
        stream = dataclasses.asdict(ctx.stream) | {"type": ctx.config.source.type or ""}
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return SessionInfo(config=ctx.config.model_dump(mode="json"), stream=stream,
                           models=models, session_id=uuid.uuid4().hex,
                           stem=f"{self.cfg.prefix}-{stamp}-{os.getpid()}")

    def open(self, ctx: Any) -> None:
        """Check the folder, start the writer process (the ring holds what comes meanwhile).

        The loop does not wait for the writer to be up; a writer that cannot create its file
        reports it in the status (``record.error``) and the log.
        """
        from rtdecode.record.writer import writer_main

        self._clock = ctx.clock
        _check_writable(Path(self.cfg.dir))
        mp = multiprocessing.get_context("spawn")  # never fork a process with liblsl / zmq threads
        try:
            self.ring = ShmRing.create(int(self.cfg.queue_mb * 1e6), mp.Lock())
        except OSError as exc:
            raise SinkError(f"record: cannot allocate the {self.cfg.queue_mb:g} MB queue in shared "
                            f"memory: {exc}", "lower record.queue_mb, or give /dev/shm more room") from exc
        self.process = mp.Process(target=writer_main, name="rtdecode-record-writer", daemon=False,
                                  args=(self.ring.shm.name, self.ring.lock, self.cfg.model_dump_json(),
                                        self._session_info(ctx), os.getpid()))
        self.process.start()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Wait until the writer has created the first file (tests, tools); False on failure."""
        assert self.ring is not None
        end = time.monotonic() + timeout_s
        while not (self.ring.ctl[C_READY] or self.ring.ctl[C_FAILED]) and time.monotonic() < end:
            time.sleep(0.02)
        return bool(self.ring.ctl[C_READY])

    def on_chunk(self, chunk: Chunk) -> None:
        """Queue an input chunk as served to the decoders (checked, with its flags; loop thread)."""
        ring = self.ring
        if ring is None or not ring.put_chunk(chunk.samples, chunk.t_lsl, chunk.first_index,
                                              int(chunk.flags), self._clock()):
            self.drops["chunks"] += 1
            self.drops["samples"] += chunk.n
            if ring is not None:
                ring.ctl[C_DROP_CHUNKS] = self.drops["chunks"]
                ring.ctl[C_DROP_SAMPLES] = self.drops["samples"]

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Queue a published frame (loop thread)."""
        ring = self.ring
        if ring is None or not ring.put_frame(frame, self._clock()):
            self.drops["frames"] += 1
            if ring is not None:
                ring.ctl[C_DROP_FRAMES] = self.drops["frames"]

    def poll(self, now: float) -> float:
        """Nothing is ever due on the loop (the writer process keeps its own time)."""
        return math.inf

    def status(self) -> dict:
        """Recorder counters for the status message."""
        if self._final is not None:
            return self._final
        ring = self.ring
        if ring is None:
            return {"file": None, "dropped": dict(self.drops), "error": "not open"}
        from rtdecode.record.writer import TEXT_ERROR, TEXT_PATH

        c = ring.ctl
        alive = self.process is not None and self.process.is_alive()
        error = ring.text(TEXT_ERROR) or (None if alive or c[C_STOP] else "the writer process is gone")
        if error and not self._error_logged:
            self._error_logged = True
            logger.error("record: %s; the daemon goes on without recording (queued items are "
                         "dropped and counted)", error)
        return {"file": ring.text(TEXT_PATH) or None, "part": int(c[C_PART]),
                "queued_mb": round(ring.queued_bytes / 1e6, 3),
                "queue_mb": round(ring.capacity / 1e6, 3),
                "dropped": dict(self.drops),
                "written": {"samples": int(c[C_SAMPLES]), "frames": int(c[C_FRAMES])},
                "flushes": int(c[C_FLUSHES]), "writer_pid": int(c[C_WRITER_PID]), "error": error}

    def close(self) -> None:
        """Let the writer write what is queued and close the file; free the ring (idempotent)."""
        ring, proc = self.ring, self.process
        if ring is None:
            return
        ring.ctl[C_STOP] = 1
        if proc is not None:
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                logger.error("record: the writer did not finish within %g s; stopping it (the file "
                             "keeps what it flushed)", STOP_TIMEOUT_S)
                proc.terminate()
                proc.join(5)
        self._final = self.status()
        done = self._final
        logger.info("recorded %s samples and %s frames to %s (dropped: %s)", done["written"]["samples"],
                    done["written"]["frames"], done["file"], self.drops)
        self.ring = None
        ring.close(unlink=True)


def make_recorder(section: RecordConfig, cfg: Any) -> list[Recorder]:
    """Plug-in factory of the ``[record]`` section (``rtdecode.service.plugins.FACTORIES``)."""
    return [Recorder(section)] if section.enabled else []
