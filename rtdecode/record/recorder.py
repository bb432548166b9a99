"""The session recorder: a daemon plug-in that queues every input chunk and published frame.

Loop side only: :meth:`Recorder.on_chunk` and :meth:`Recorder.on_sent` copy what they are
given and append it to a bounded queue (a few µs, no I/O, no lock). When the queue is full
the item is dropped and counted — in the status message under ``record`` and in the file's
``/recorder/drops`` — never silently. The disk work is the writer thread's
(:mod:`rtdecode.record.writer`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from rtdecode.record.config import RecordConfig
from rtdecode.record.writer import CHUNK, FRAME, Drops, RecordQueue, SessionInfo, SessionWriter
from rtdecode.types import Chunk

logger = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hex), to tie a recording to the exact model file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        self.queue = RecordQueue(cfg.queue_items, int(cfg.queue_mb * 1e6))
        self.drops = Drops()
        self.writer: SessionWriter | None = None
        self._clock: Any = time.monotonic
        self._closed = False

    def open(self, ctx: Any) -> None:
        """Create the first session file (with config, stream and models) and start the writer."""
        self._clock = ctx.clock
        models = {}
        for name, m in ctx.models.items():
            models[name] = {"topic": m["topic"], "path": str(m["path"]), "sha256": file_sha256(m["path"]),
                            "metadata_json": m["metadata"]}
        stamp = time.strftime("%Y%m%d-%H%M%S")
        info = SessionInfo(config=ctx.config.model_dump(mode="json"), stream=dict(vars(ctx.stream)),
                           models=models, session_id=uuid.uuid4().hex,
                           stem=f"{self.cfg.prefix}-{stamp}-{os.getpid()}")
        self.writer = SessionWriter(self.cfg, info, self.queue, self.drops, ctx.clock)
        self.writer.start()

    def on_chunk(self, chunk: Chunk, flags: int = 0) -> None:
        """Queue a copy of an input chunk as served to the decoders (loop thread)."""
        x, t = chunk.samples, chunk.t_lsl
        nbytes = x.nbytes + t.nbytes
        item = (CHUNK, x.copy(), t.copy(), chunk.first_index, int(flags), self._clock(), nbytes)
        if not self.queue.put(item, nbytes):
            self.drops.chunks += 1
            self.drops.samples += chunk.n

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Queue a copy of a published frame (loop thread)."""
        b = bytes(frame)
        if not self.queue.put((FRAME, b, self._clock(), len(b)), len(b)):
            self.drops.frames += 1

    def status(self) -> dict:
        """Recorder counters for the status message."""
        w = self.writer
        q = self.queue
        return {
            "file": str(w.paths[-1]) if w is not None and w.paths else None,
            "part": w.part_no if w is not None else None,
            "queued_items": len(q),
            "queued_mb": round((q.bytes_in - q.bytes_out) / 1e6, 3),
            "dropped": {"chunks": self.drops.chunks, "samples": self.drops.samples,
                        "frames": self.drops.frames},
            "written": {"samples": w.samples if w else 0, "frames": w.frames if w else 0},
            "flushes": w.flushes if w else 0,
            "error": w.error if w else None,
        }

    def close(self) -> None:
        """Write what is queued and close the file (idempotent)."""
        w = self.writer
        if w is not None and not self._closed:
            self._closed = True
            w.stop()
            logger.info("recorded %d samples and %d frames to %s (dropped: %s)", w.samples, w.frames,
                        ", ".join(map(str, w.paths)), vars(self.drops))
