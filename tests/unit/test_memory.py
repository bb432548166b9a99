"""The daemon's heap helpers on this machine's C library (glibc on Linux): real allocations, real
resident memory read from /proc."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rtdecode.service.memory import limit_malloc_arenas, trim_heap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc helpers (Linux)")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_trim_heap_returns_memory_freed_inside_the_heap() -> None:
    # 64 KiB blocks come from the heap (below glibc's mmap threshold); freeing every other one
    # leaves holes that free() cannot give back, only malloc_trim can
    blocks = [bytearray(64 * 1024) for _ in range(600)]
    for b in blocks:
        b[::4096] = b"\x01" * len(b[::4096])  # touch every page
    del blocks[::2]
    held = _rss_mb()
    assert trim_heap()
    assert held - _rss_mb() > 8.0, "malloc_trim gave back less than 8 of ~19 MB of holes"
    assert len(blocks) == 300


def test_limit_malloc_arenas_is_accepted() -> None:
    assert limit_malloc_arenas(2)
