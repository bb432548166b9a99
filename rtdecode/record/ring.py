"""A bounded byte ring in shared memory between the daemon's loop and the writer process.

The loop (single producer) appends length-prefixed records; the writer process (single
consumer) takes every complete record. Nothing blocks: a record that does not fit is
refused (the caller counts it). The two positions are monotonic byte counters, updated
under a process-shared lock only *after* the bytes they cover are written or read, so the
lock's barriers make the data visible on any CPU (also weakly ordered ones, e.g. a Jetson).

Layout of the shared block::

    [ control: CTL_SLOTS u64 | path 512 B | error 512 B ]  [ data: capacity bytes ]

Control slots: see the ``C_*`` indices. The loop writes the drop counters and ``C_STOP``;
the writer writes ``C_READ``, the written counters, ``C_READY``, the current file path and
its error (if it stopped).

Records: ``u32 length`` then ``length`` bytes — a chunk (``CHUNK_HEAD`` + float32 samples
(n, C) + float64 times (n,)) or a frame (``FRAME_HEAD`` + the frame's bytes).
"""

from __future__ import annotations

import struct
from multiprocessing import shared_memory
from typing import Any

import numpy as np

CTL_SLOTS = 16
C_WRITE, C_READ, C_STOP, C_DROP_CHUNKS, C_DROP_SAMPLES, C_DROP_FRAMES = range(6)
C_SAMPLES, C_FRAMES, C_FLUSHES, C_PART, C_READY, C_FAILED, C_WRITER_PID = range(6, 13)
_TEXT = 512
_HEAD = CTL_SLOTS * 8 + 2 * _TEXT
_LEN = struct.Struct("<I")
#: kind (u8, 0 = chunk), n, C, flags, first_index, t_recorded
CHUNK_HEAD = struct.Struct("<BxxxIIIQd")
#: kind (u8, 1 = frame), t_recorded
FRAME_HEAD = struct.Struct("<Bxxxd")
#: the record length and the head, packed in one go
_CHUNK_REC = struct.Struct("<I" + CHUNK_HEAD.format[1:])
_FRAME_REC = struct.Struct("<I" + FRAME_HEAD.format[1:])
CHUNK, FRAME = 0, 1


class ShmRing:
    """The ring (create it in the daemon, attach to it by name in the writer).

    Parameters
    ----------
    shm : SharedMemory
    lock : multiprocessing lock
        Shared by both processes; guards only the position updates.
    """

    def __init__(self, shm: shared_memory.SharedMemory, lock: Any) -> None:
        self.shm = shm
        self.lock = lock
        buf = shm.buf
        assert buf is not None
        self.ctl = np.ndarray((CTL_SLOTS,), np.uint64, buf, 0)
        self.data = buf[_HEAD:]
        self._buf = buf
        self.capacity = len(self.data)
        self._chunk_head = bytearray(_CHUNK_REC.size)  # reused: one producer thread
        self._frame_head = bytearray(_FRAME_REC.size)
        self._w = 0  # producer's own copy of the write position
        self._r = 0  # producer's last look at the read position (it only grows)

    @classmethod
    def create(cls, capacity: int, lock: Any) -> ShmRing:
        """A new ring of ``capacity`` data bytes (a new block is zero-filled: positions 0)."""
        return cls(shared_memory.SharedMemory(create=True, size=_HEAD + capacity), lock)

    @classmethod
    def attach(cls, name: str, lock: Any) -> ShmRing:
        """The ring another process created."""
        return cls(shared_memory.SharedMemory(name=name), lock)

    # -- text slots (status only; a torn read is harmless) -----------------
    def set_text(self, slot: int, text: str) -> None:
        """Write a status text (file path, error) into slot 0 or 1."""
        raw = text.encode("utf-8")[: _TEXT - 1]
        off = CTL_SLOTS * 8 + slot * _TEXT
        self._buf[off:off + _TEXT] = raw + bytes(_TEXT - len(raw))

    def text(self, slot: int) -> str:
        """The status text in slot 0 or 1."""
        off = CTL_SLOTS * 8 + slot * _TEXT
        raw = bytes(self._buf[off:off + _TEXT])
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    # -- producer ---------------------------------------------------------
    def _copy_in(self, pos: int, src: memoryview) -> int:
        cap, n = self.capacity, len(src)
        i = pos % cap
        first = min(n, cap - i)
        self.data[i:i + first] = src[:first]
        if first < n:
            self.data[: n - first] = src[first:]
        return pos + n

    def _fits(self, size: int) -> bool:
        if size <= self.capacity - (self._w - self._r):
            return True
        self._r = int(self.ctl[C_READ])  # look again only when the old look says it is full
        return size <= self.capacity - (self._w - self._r)

    def _put(self, head: bytearray, parts: tuple[memoryview, ...]) -> None:
        pos = self._copy_in(self._w, memoryview(head))
        for p in parts:
            pos = self._copy_in(pos, p)
        self._w = pos
        with self.lock:  # publish the record (release barrier after the bytes)
            self.ctl[C_WRITE] = pos

    def put_chunk(self, x: np.ndarray, t: np.ndarray, first_index: int, flags: int, t_rec: float) -> bool:
        """Queue a chunk: samples float32 (n, C), times float64 (n,). False when it does not fit."""
        x = np.ascontiguousarray(x, np.float32)
        t = np.ascontiguousarray(t, np.float64)
        size = _CHUNK_REC.size + x.nbytes + t.nbytes
        if not self._fits(size):
            return False
        _CHUNK_REC.pack_into(self._chunk_head, 0, size - _LEN.size, CHUNK, x.shape[0], x.shape[1], flags,
                             first_index, t_rec)
        self._put(self._chunk_head, (x.data.cast("B"), t.data.cast("B")))
        return True

    def put_frame(self, frame: bytes | memoryview, t_rec: float) -> bool:
        """Queue a published frame. False when it does not fit."""
        view = memoryview(frame).cast("B")
        size = _FRAME_REC.size + len(view)
        if not self._fits(size):
            return False
        _FRAME_REC.pack_into(self._frame_head, 0, size - _LEN.size, FRAME, t_rec)
        self._put(self._frame_head, (view,))
        return True

    # -- consumer ---------------------------------------------------------
    def _copy_out(self, pos: int, n: int) -> bytes:
        cap = self.capacity
        i = pos % cap
        first = min(n, cap - i)
        if first == n:
            return bytes(self.data[i:i + n])
        return bytes(self.data[i:i + first]) + bytes(self.data[: n - first])

    def take_all(self) -> list[tuple]:
        """Every complete record queued now, decoded: ``(CHUNK, x, t, first, flags, t_rec)`` or
        ``(FRAME, frame_bytes, t_rec)``."""
        with self.lock:  # acquire barrier before reading the bytes
            w = int(self.ctl[C_WRITE])
        r = int(self.ctl[C_READ])
        out: list[tuple] = []
        while r < w:
            (size,) = _LEN.unpack(self._copy_out(r, _LEN.size))
            rec = self._copy_out(r + _LEN.size, size)
            r += _LEN.size + size
            if rec[0] == CHUNK:
                _, n, c, flags, first, t_rec = CHUNK_HEAD.unpack_from(rec)
                o = CHUNK_HEAD.size
                x = np.frombuffer(rec, np.float32, n * c, o).reshape(n, c)
                t = np.frombuffer(rec, np.float64, n, o + 4 * n * c)
                out.append((CHUNK, x, t, first, flags, t_rec))
            else:
                _, t_rec = FRAME_HEAD.unpack_from(rec)
                out.append((FRAME, rec[FRAME_HEAD.size:], t_rec))
        with self.lock:  # free the space only after the bytes are copied out
            self.ctl[C_READ] = r
        return out

    @property
    def queued_bytes(self) -> int:
        """Bytes written and not yet taken."""
        return int(self.ctl[C_WRITE]) - int(self.ctl[C_READ])

    def close(self, unlink: bool = False) -> None:
        """Detach (and, by the creator, remove the block)."""
        self.data.release()
        del self.ctl, self._buf  # the last views of the block: it can be closed now
        self.shm.close()
        if unlink:
            self.shm.unlink()
