"""Keep the daemon's resident memory flat across reconnections (glibc malloc arenas).

Every reconnection makes liblsl start new threads (the new inlet's data and info receivers).
glibc gives a thread that allocates while another holds the main heap's lock an arena of its
own, up to 8 per core, and keeps the memory freed in those arenas mapped. Measured with
``bench/reconnect_memory.py`` (256 ch @ 1 kHz, producer killed and restarted 9 times): the
daemon's RSS grew in ~5.5 MB steps at most reconnections with glibc's default, and stayed flat
within 0.3 MB with at most 2 arenas (docs/reliability.md). :func:`limit_malloc_arenas` sets
that limit (``mallopt(M_ARENA_MAX)``) before any liblsl thread starts; it is
``service.malloc_arenas`` (null keeps glibc's default). :func:`trim_heap` hands the memory
freed by a replaced inlet back to the system (``malloc_trim``) once input is back after an
outage, off the data path. Other C libraries: nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

logger = logging.getLogger(__name__)

__all__ = ["limit_malloc_arenas", "trim_heap"]

#: glibc's mallopt parameter number of M_ARENA_MAX
M_ARENA_MAX = -8


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library on Linux (None elsewhere or when it cannot be loaded); looked up once, since
    ``find_library`` may run ``ldconfig`` and the daemon trims at every reconnection."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(n: int) -> bool:
    """At most ``n`` malloc arenas for threads created from now on (glibc); True when set."""
    libc = _libc()
    if libc is None:
        return False
    try:
        ok = bool(libc.mallopt(M_ARENA_MAX, int(n)))
    except AttributeError:  # not glibc (musl has no arenas to limit)
        return False
    if not ok:
        logger.warning("mallopt(M_ARENA_MAX, %d) was refused; memory may grow at reconnections", n)
    return ok


def trim_heap() -> bool:
    """Return free heap memory of every arena to the system (glibc ``malloc_trim(0)``); True
    when some was returned. Takes up to a few ms: call it off the data path."""
    libc = _libc()
    try:
        return libc is not None and bool(libc.malloc_trim(0))
    except AttributeError:  # not glibc
        return False
