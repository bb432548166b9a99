"""Drift-free pacing of chunked pushes on the LSL clock, and a signal-driven stop event.

A :class:`Pacer` keeps an absolute schedule: chunk ``k`` (1-based, the k-th call of
:meth:`Pacer.wait_next`) is due at ``t0 + k * chunk_samples / rate_hz`` on
``pylsl.local_clock()``. Sleeping never accumulates error, because each deadline is computed
from ``t0``, not from the previous wake-up; a late wake-up is reported and the next chunk is
still due at its own time (a stalled producer catches up in a burst, with correct timestamps).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator

from rtdecode.errors import ConfigError
from rtdecode.lsl import pylsl

logger = logging.getLogger(__name__)

#: Default chunk duration, s.
DEFAULT_CHUNK_S = 0.001


def chunk_samples_for(rate_hz: float, chunk_s: float = DEFAULT_CHUNK_S) -> int:
    """Samples per chunk for a chunk duration: ``round(rate_hz * chunk_s)``, at least 1.

    Parameters
    ----------
    rate_hz : float
        Sample rate of the pushed stream, Hz.
    chunk_s : float
        Wanted chunk duration, s (> 0).
    """
    if not (math.isfinite(chunk_s) and chunk_s > 0):
        raise ConfigError(f"chunk duration must be > 0 s, got {chunk_s!r}",
                          "use e.g. 0.001 (1 ms)")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f"rate must be > 0 Hz, got {rate_hz!r}", "give a positive rate")
    return max(1, int(round(rate_hz * chunk_s)))


class Pacer:
    """Absolute, drift-free schedule of chunk deadlines on ``pylsl.local_clock()``.

    Parameters
    ----------
    rate_hz : float
        Samples per second of the paced stream.
    chunk_samples : int, optional
        Samples per chunk. Default: :func:`chunk_samples_for` (``rate_hz``, ``chunk_s``).
    chunk_s : float
        Chunk duration, s, used when ``chunk_samples`` is not given (default 1 ms).
    late_threshold_s : float, optional
        A wake-up later than this counts as late (default: two chunk periods, at least
        20 ms, so ordinary sleep jitter is not reported). A late wake-up after at least one
        second without one is logged; the rest of the episode is only counted.

    Attributes
    ----------
    t0 : float or None
        Schedule origin (LSL clock, s): the time of sample 0. ``None`` until :meth:`start`.
    chunks_done : int
        Chunks waited for since :meth:`start`.
    n_late : int
        Wake-ups later than ``late_threshold_s`` after their deadline.
    max_lateness_s : float
        Largest lateness seen, s.
    """

    def __init__(self, rate_hz: float, chunk_samples: int | None = None, *,
                 chunk_s: float = DEFAULT_CHUNK_S,
                 late_threshold_s: float | None = None) -> None:
        if chunk_samples is None:
            chunk_samples = chunk_samples_for(rate_hz, chunk_s)
        elif int(chunk_samples) < 1:
            raise ConfigError(f"chunk_samples must be >= 1, got {chunk_samples!r}",
                              "use a positive number of samples per chunk")
        else:
            chunk_samples_for(rate_hz, 1.0)  # validates rate_hz
        self.rate_hz = float(rate_hz)
        self.chunk_samples = int(chunk_samples)
        self.period_s = self.chunk_samples / self.rate_hz
        self.late_threshold_s = (max(2 * self.period_s, 0.02) if late_threshold_s is None
                                 else float(late_threshold_s))
        self.t0: float | None = None
        self.chunks_done = 0
        self.n_late = 0
        self.max_lateness_s = 0.0
        self._last_late: float | None = None

    def start(self, t0: float | None = None) -> float:
        """Start (or restart) the schedule at ``t0`` (default: now). Returns ``t0``."""
        self.t0 = pylsl.local_clock() if t0 is None else float(t0)
        self.chunks_done = 0
        self.n_late = 0
        self.max_lateness_s = 0.0
        self._last_late = None
        return self.t0

    def _origin(self) -> float:
        if self.t0 is None:
            raise RuntimeError("Pacer.start() must be called before waiting")
        return self.t0

    def sample_time(self, i: int) -> float:
        """Scheduled time of sample ``i`` (0-based): ``t0 + i / rate_hz``, s."""
        return self._origin() + i / self.rate_hz

    def due_time(self, k: int) -> float:
        """Deadline of chunk ``k`` (1-based): ``t0 + k * chunk_samples / rate_hz``, s.

        All samples of chunk ``k`` (indices ``(k-1)*chunk .. k*chunk-1``) lie before it.
        """
        return self._origin() + k * self.chunk_samples / self.rate_hz

    def wait_until(self, deadline: float, stop: threading.Event | None = None) -> float:
        """Sleep until ``deadline`` (LSL clock, s); returns the lateness, s (>= 0).

        With ``stop``, the sleep is ``stop.wait`` so setting the event ends it early.
        """
        now = pylsl.local_clock()
        if deadline > now:
            if stop is None:
                time.sleep(deadline - now)
            elif stop.wait(deadline - now):
                return 0.0
            now = pylsl.local_clock()
        lateness = max(0.0, now - deadline)
        self.max_lateness_s = max(self.max_lateness_s, lateness)
        if lateness > self.late_threshold_s:
            self.n_late += 1
            if self._last_late is None or now - self._last_late > 1.0:
                logger.warning("pacing fell %.1f ms behind schedule (chunk period %.2f ms); "
                               "catching up with the scheduled timestamps",
                               1e3 * lateness, 1e3 * self.period_s)
            self._last_late = now
        return lateness

    def wait_next(self, stop: threading.Event | None = None) -> float:
        """Sleep until the next chunk is due; returns its lateness, s (>= 0).

        With ``stop``, setting the event ends the sleep early.
        """
        self.chunks_done += 1
        return self.wait_until(self.due_time(self.chunks_done), stop)


def linger_before_destroy(outlets: list[pylsl.StreamOutlet], linger_s: float,
                          pushed: bool = True) -> None:
    """Sleep ``linger_s`` before outlets are destroyed, if any has a consumer and data was
    pushed, so the last queued chunks reach the consumers (liblsl has no flush)."""
    if linger_s > 0 and pushed and any(o.have_consumers() for o in outlets):
        time.sleep(linger_s)


def set_from_handler(event: threading.Event) -> None:
    """Set ``event`` from a signal handler without risking a deadlock.

    A handler runs in the main thread between two bytecodes — possibly while that thread holds
    the event's internal lock, inside ``event.wait`` (a paced replay waits on its stop event
    every chunk). ``event.set()`` there waits for that lock for ever: the process ignores
    SIGTERM (seen twice in CI: a looping replay that did not exit within 10 s and 30 s). A
    short-lived thread sets it instead, as soon as the main thread lets go of the lock.
    """
    threading.Thread(target=event.set, name="rtdecode-signal", daemon=True).start()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event,
                    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM sets ``stop`` (:func:`set_from_handler`); a
    second one raises ``KeyboardInterrupt`` (forced exit). Previous handlers are restored on exit.

    Outside the main thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        logger.info("received %s; stopping", signal.Signals(signum).name)
        set_from_handler(stop)

    for sig in signals:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
