"""Publishing: one :class:`Topic` per output stream, all sending through one :class:`Outbox`.

A topic owns what publishing it needs: the frame encoder, the sequence number, the safe value
(:class:`~rtdecode.service.safe_value.SafeValue`, holding the last good estimate) and the STALE
schedule (one safe message per output frame while the input is silent, capped at
``service.stale_max_rate_hz``). The outbox is the PUB socket with the age histograms (receive
side of the latency the status reports) and the plug-ins that see every frame sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from rtdecode.lsl import pylsl
from rtdecode.service.safe_value import SafeValue
from rtdecode.service.telemetry import LatencyHistogram
from rtdecode.sinks.protocol import EstimateEncoder
from rtdecode.sinks.zmq_pub import Publisher
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

LATE = int(Flags.LATE)

__all__ = ["Outbox", "Topic"]


class Outbox:
    """The daemon's PUB socket, the age of what it sends, and the taps that see every frame.

    ``fresh`` counts estimates (their age = publish time − the LSL time of their newest input
    sample goes into ``latency``; :meth:`window` gives the ages since the last stats line); an
    estimate older than ``budget_s`` is
    flagged ``LATE`` and counted in ``late``; ``safe`` counts STALE safe values.
    """

    def __init__(self, publisher: Publisher, clock: Callable[[], float] = pylsl.local_clock) -> None:
        self.publisher = publisher
        self.clock = clock
        self.latency = LatencyHistogram()
        self._mark = self.latency.copy()
        self.taps: list[Callable[[bytes | memoryview], None]] = []
        self.fresh = 0
        self.safe = 0
        self.late = 0
        self.budget_s = math.inf  #: the latency budget (set by the daemon), s

    def window(self, restart: bool = False) -> LatencyHistogram:
        """Ages recorded since the last restart of the window (the stats line's)."""
        out = self.latency.since(self._mark)
        if restart:
            self._mark = self.latency.copy()
        return out

    def send(self, frame: bytes | memoryview) -> None:
        """Send one frame (status, events) and show it to the taps."""
        self.publisher.send(frame)
        for tap in self.taps:
            tap(frame)

    def estimate(self, enc: EstimateEncoder, seq: int, flags: int, t_source: float,
                 values: np.ndarray, fresh: bool) -> None:
        """Encode and send one estimate, stamped now; a fresh one's age is recorded."""
        now = self.clock()
        if fresh and now - t_source > self.budget_s:
            flags |= LATE
            self.late += 1
        self.send(enc.encode(seq, flags, t_source, now, values))
        if fresh:
            self.fresh += 1
            self.latency.record_value(now - t_source)
        else:
            self.safe += 1


class Topic:
    """One published topic.

    Parameters
    ----------
    name : str
        The topic.
    safe : SafeValue
        Its safe value (shared with the decoder or fusion stage that feeds it).
    outbox : Outbox
    rate_hz : float
        Its output rate, Hz (the STALE schedule's rate, capped by ``stale_max_rate_hz``).
    stale_max_rate_hz : float
    every : bool
        Publish every output row (``sink.publish = "every"``) or only a tick's newest.
    """

    def __init__(self, name: str, safe: SafeValue, outbox: Outbox, *, rate_hz: float,
                 stale_max_rate_hz: float, every: bool = True) -> None:
        self.name = name
        self.safe = safe
        self.outbox = outbox
        self.encoder = EstimateEncoder(name, safe.n)
        self.seq = 0
        self.every = every
        self.period_s = 1.0 / min(rate_hz, stale_max_rate_hz)
        self.next_safe = 0.0

    def publish(self, y: np.ndarray, t: np.ndarray, flags: np.ndarray, newest_only: bool = False) -> None:
        """Publish rows of estimates: y float32 (m, K), t float64 (m,) s, flags uint32 (m,).

        Only the newest row with ``sink.publish = "latest"`` or ``newest_only`` (coalescing).
        """
        n = y.shape[0]
        est, enc, seq = self.outbox.estimate, self.encoder, self.seq
        for i in range(0 if self.every and not newest_only else n - 1, n):  # no arrays per message
            est(enc, seq, int(flags[i]), float(t[i]), y[i], True)
            seq += 1
        self.seq = seq

    def publish_one(self, values: np.ndarray, t_source: float, flags: int, fresh: bool) -> None:
        """Publish one estimate (fusion): fresh ones count into the age histograms."""
        self.outbox.estimate(self.encoder, self.seq, flags, t_source, values, fresh)
        self.seq += 1

    def stale_from(self, now: float) -> None:
        """The input just went silent: the first safe value is due now."""
        self.next_safe = now

    def publish_safe(self, now: float, t_source: float, mode: str) -> float:
        """Publish the safe value (flags ``STALE``) when due; returns when the next one is due, s."""
        if now >= self.next_safe:
            value, extra = self.safe.value(mode)
            self.publish_one(value, t_source, int(Flags.STALE) | extra, fresh=False)
            due, period = self.next_safe, self.period_s
            self.next_safe = due + period if now - due < period else now + period
        return self.next_safe
