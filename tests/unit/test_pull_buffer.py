"""The inlet's pull buffer is resident from the start: a catch-up pull after a stall must not
page-fault its way through rows no steady pull has touched (docs/performance.md, iBCI)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rtdecode.sources.lsl_inlet import _resident

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")

MB = 1 << 20


def _rss() -> int:
    """Resident memory of this process, bytes."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


def test_pull_buffer_pages_are_resident_when_allocated() -> None:
    shape = (8192, 2048)  # 64 MiB of float32, larger than the malloc / numpy caches
    before = _rss()
    lazy = np.zeros(shape, np.float32)  # what the buffer was: pages mapped on first touch
    lazy_growth = _rss() - before
    before = _rss()
    buf = _resident(shape, np.float32)
    growth = _rss() - before
    assert buf.shape == shape and buf.dtype == np.float32 and not buf.any()
    assert lazy_growth < 8 * MB <= 56 * MB < growth
    del lazy
