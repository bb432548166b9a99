"""The shared-memory ring between the loop and the writer: records survive wrap-around intact,
a record that does not fit is refused (never waited for), and space comes back once taken."""

from __future__ import annotations

import multiprocessing

import numpy as np

from rtdecode.record.ring import CHUNK, FRAME, ShmRing


def test_records_wrap_around_intact_and_a_full_ring_refuses() -> None:
    ring = ShmRing.create(1000, multiprocessing.get_context("spawn").Lock())
    try:
        x = np.arange(128, dtype=np.float32).reshape(2, 64)
        t = np.array([1.0, 2.0])
        for i in range(50):  # ~700 bytes per round in a 1000-byte ring: every round wraps somewhere
            assert ring.put_chunk(x + i, t + i, 10 * i, i % 3, 0.5 * i)
            assert ring.put_frame(b"abc" * (i % 5 + 1), 0.25 * i)
            (kc, xc, tc, first, flags, t_rec), (kf, frame, tf) = ring.take_all()
            assert (kc, kf) == (CHUNK, FRAME)
            np.testing.assert_array_equal(xc, x + i)
            np.testing.assert_array_equal(tc, t + i)
            assert (first, flags, t_rec) == (10 * i, i % 3, 0.5 * i)
            assert (frame, tf) == (b"abc" * (i % 5 + 1), 0.25 * i)
        assert ring.queued_bytes == 0
        big = np.zeros((2, 64), np.float32)
        assert ring.put_chunk(big, t, 0, 0, 0.0)  # ~580 bytes: fits
        assert not ring.put_chunk(big, t, 1, 0, 0.0)  # would overwrite unread bytes: refused
        assert len(ring.take_all()) == 1
        assert ring.put_chunk(big, t, 2, 0, 0.0)  # the space is back
        ring.set_text(0, "/tmp/x.h5")
        assert ring.text(0) == "/tmp/x.h5" and ring.text(1) == ""
    finally:
        ring.close(unlink=True)
