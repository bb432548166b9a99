"""The input watch: silence → STALE, and the way back without serving old samples as fresh.

``service.stale_after_s`` without a sample makes the input *stale* (:meth:`InputWatch.check`).
When samples come again, :meth:`InputWatch.admit` drops those older than the outage — not newer
than the last sample served before it, or arriving more than ``stale_after_s`` after their
timestamp (a backlog flushed by a producer or by liblsl) — counts them, and marks the first
chunk served after a drop with ``GAP``. The daemon decides what to do on entering and leaving
(:mod:`rtdecode.service.daemon`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rtdecode.types import Chunk, Flags

__all__ = ["InputWatch", "TransitClock"]


class InputWatch:
    """Silence and outage bookkeeping of one input stream.

    Parameters
    ----------
    stale_after_s : float
        Silence that makes the input stale, s.
    now : float
        Local-clock time the watch starts (the input counts as seen then), s.
    """

    def __init__(self, stale_after_s: float, now: float) -> None:
        self.stale_after_s = stale_after_s
        self.stale = False
        self.episodes = 0
        self.last_input = now  #: local-clock time of the last sample served, s
        self.stale_since = 0.0  #: last input before the current / last outage, s
        self.t_detect = math.nan  #: when the current / last outage was detected, s
        self.old_dropped = 0  #: samples dropped as older than an outage
        self.last_outage: dict[str, float] = {}
        self._t_served = -math.inf  #: LSL time of the newest sample served, s
        self._recovering = False
        self._pending = 0  #: GAP to carry when a whole chunk was dropped

    def check(self, now: float) -> bool:
        """True when the input has just gone stale (silent for more than ``stale_after_s``)."""
        if self.stale or now - self.last_input <= self.stale_after_s:
            return False
        self.stale = self._recovering = True
        self.stale_since, self.t_detect = self.last_input, now
        self.episodes += 1
        return True

    def silent_for(self, now: float) -> float:
        """Time without input, s (0 while not stale)."""
        return now - self.stale_since if self.stale else 0.0

    def admit(self, chunk: Chunk, now: float) -> Chunk | None:
        """The part of ``chunk`` to serve (None: all of it was older than the outage)."""
        if self._recovering:
            part = self._fresh_part(chunk, now)
            if part is None:
                return None
            chunk = part
        if self._pending:
            chunk = dataclasses.replace(chunk, flags=chunk.flags | self._pending)
            self._pending = 0
        self.last_input = now
        self._t_served = float(chunk.t_lsl[-1])
        return chunk

    def leave(self, now: float) -> dict[str, float]:
        """The input is back: end the stale episode; returns the outage's timings, s."""
        self.stale = False
        self.last_outage = {"silent_s": round(now - self.stale_since, 3),
                            "detect_s": round(self.t_detect - self.stale_since, 3),
                            "stale_s": round(now - self.t_detect, 3)}
        return self.last_outage

    def _fresh_part(self, chunk: Chunk, now: float) -> Chunk | None:
        t = chunk.t_lsl
        fresh = (t > self._t_served) & (now - t <= self.stale_after_s)
        if fresh.all():
            self._recovering = False
            return chunk
        k = int(np.argmax(fresh)) if fresh.any() else chunk.n
        self.old_dropped += k
        self._pending = int(Flags.GAP)  # the served data skips the dropped samples
        if k == chunk.n:
            return None
        self._recovering = False
        return Chunk(samples=chunk.samples[k:], t_lsl=t[k:], first_index=chunk.first_index + k,
                     flags=chunk.flags)


class TransitClock:
    """How long a sample takes from its LSL time stamp to the daemon's pull, for timing a wake-up.

    The smallest delay seen, rising by :attr:`DRIFT_S` per pull so that it follows a transport
    that became slower (a pull made while the daemon was busy sees a longer delay than the
    transport's; the minimum ignores it).
    """

    #: upward drift of the estimate per pull, s
    DRIFT_S = 1e-6

    def __init__(self) -> None:
        self.delay_s = math.inf  #: the estimate, s (inf before the first pull)

    def update(self, delay_s: float) -> None:
        """One pull: pull time − LSL time of its newest sample, s."""
        self.delay_s = min(self.delay_s + self.DRIFT_S, delay_s)
