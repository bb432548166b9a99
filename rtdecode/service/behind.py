"""Falling behind is a state: the latency budget, the catch-up policy and their counters.

The daemon is *behind* when, on three pulls in a row, the oldest sample it pulls has waited
in the daemon's own input queue longer than the latency budget (``service.latency_budget_ms``):
the input arrives faster than the daemon decodes and publishes it, and a backlog builds (a late
pull or two are a hiccup that the next pull catches up). That wait is bounded by how long the
loop was busy since its last pull (plus, when that pull left samples behind, their wait then),
and by the sample's age: a source that delivers its samples late — a Bluetooth amplifier, back-
dated timestamps, a stalled sender catching up — makes them old but leaves no backlog here, so
it makes estimates ``LATE`` but not the daemon behind, and ``skip`` never drops what could be
decoded at once. The daemon stops being behind when the wait is below a quarter of the budget
(less than ``skip`` would have kept) on three pulls in a row spanning at least the budget: one
young pull is no proof, since a pull that ``skip`` cut to a few samples decodes fast even while
decoding is slower than real time, and the backlog would then regrow for three more late pulls
before ``skip`` acts again. While behind (``service.on_behind``):

- ``skip``: input samples older than a quarter of the budget relative to the newest one pulled
  are dropped before decoding (counted in ``samples_skipped``; the next row carries ``GAP``, as
  after an outage), so a chunk never holds more than a quarter budget of samples and what is
  published stays within the budget of its input even when decoding runs up to 3x slower than
  real time;
- ``coalesce``: every sample is decoded (state stays exact) but each topic publishes only its
  newest row per tick;
- ``none``: every row is published.

Independently of the policy, any estimate older than the budget when published is flagged
``LATE`` (:class:`~rtdecode.service.topic.Outbox`). Each episode is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rtdecode.types import Chunk, Flags

logger = logging.getLogger(__name__)

__all__ = ["Backlog", "default_budget_s"]

#: the smallest default budget, s
MIN_BUDGET_S = 0.050
#: late pulls in a row that make the daemon behind
STRIKES = 3
#: while behind with ``skip``, keep the samples that waited less than this fraction of the budget
SKIP_TO = 0.25


def default_budget_s(frame_rates_hz: Sequence[float]) -> float:
    """Default latency budget: the larger of 50 ms and two frames of the slowest decoder, s."""
    return max([MIN_BUDGET_S] + [2.0 / r for r in frame_rates_hz if r > 0])


class Backlog:
    """Whether the daemon is behind its input, and the catch-up policy.

    Parameters
    ----------
    budget_s : float
        The latency budget, s.
    policy : {"skip", "coalesce", "none"}
    """

    def __init__(self, budget_s: float, policy: str) -> None:
        self.budget_s = budget_s
        self.policy = policy
        self.behind = False
        self.episodes = 0
        self.samples_skipped = 0
        self.waiting = 0  #: samples still in the inlet after the last pull
        self.oldest_age_s = 0.0  #: age of the oldest sample of the last pull (LSL time to pull), s
        self.queued_s = 0.0  #: how long that sample can have waited in the daemon's queue, s
        self.max_age_s = 0.0  #: largest such wait in the current / last episode, s
        self._strikes = 0
        self._calm = 0  #: pulls in a row, while behind, whose oldest sample waited < SKIP_TO budgets
        self._calm_since = 0.0  #: when the first of them was pulled, s

    @property
    def coalescing(self) -> bool:
        """Publish only each topic's newest row this tick."""
        return self.behind and self.policy == "coalesce"

    def on_pull(self, chunk: Chunk, now: float, waiting: int, busy_s: float) -> Chunk | None:
        """Update the state from a pulled chunk; with ``skip`` while behind, its part young enough.

        Parameters
        ----------
        chunk : Chunk
            What the pull returned (LSL times, s).
        now : float
            When the pull returned, LSL clock, s.
        waiting : int
            Samples still in the inlet after this pull.
        busy_s : float
            How long the loop was away from the inlet between the previous pull's return and
            this pull's start, s (the longest a sample can have queued since).
        """
        age = now - float(chunk.t_lsl[0])
        queued = min(age, busy_s + (self.queued_s if self.waiting else 0.0))
        self.waiting, self.oldest_age_s, self.queued_s = waiting, age, queued
        late = queued > self.budget_s
        if not self.behind:
            self._strikes = self._strikes + 1 if late else 0
            if self._strikes >= STRIKES:
                self._enter(queued, waiting)
        elif queued <= SKIP_TO * self.budget_s:  # less waiting than skip would leave
            self._calm += 1
            if self._calm == 1:
                self._calm_since = now
            if self._calm >= STRIKES and now - self._calm_since >= self.budget_s:  # caught up
                self._leave()
        else:
            self._calm = 0
        if self.behind:
            self.max_age_s = max(self.max_age_s, queued)
        if not (self.behind and self.policy == "skip" and queued > SKIP_TO * self.budget_s):
            return chunk
        keep = chunk.t_lsl[-1] - chunk.t_lsl < SKIP_TO * self.budget_s
        k = int(np.argmax(keep))
        self.samples_skipped += k
        return Chunk(samples=chunk.samples[k:], t_lsl=chunk.t_lsl[k:], first_index=chunk.first_index + k,
                     flags=chunk.flags | (int(Flags.GAP) if k else 0))

    def _enter(self, age: float, waiting: int) -> None:
        self.behind = True
        self._calm = 0
        self.episodes += 1
        self.max_age_s = age
        logger.warning("behind the input: samples wait %.1f ms before they are decoded (budget %.1f "
                       "ms), %d more waiting; on_behind = %s (episode %d; logged once)", age * 1e3,
                       self.budget_s * 1e3, waiting, self.policy, self.episodes)

    def _leave(self) -> None:
        self.behind = False
        self._strikes = self._calm = 0
        logger.warning("caught up with the input (worst age %.1f ms in the episode; %d samples "
                       "skipped so far)", self.max_age_s * 1e3, self.samples_skipped)

    def status(self, late_messages: int) -> dict:
        """The ``behind`` part of the status message."""
        return {"behind": self.behind, "budget_ms": round(self.budget_s * 1e3, 3),
                "policy": self.policy, "episodes": self.episodes,
                "samples_skipped": self.samples_skipped, "late_messages": late_messages,
                "backlog_samples": self.waiting, "oldest_age_ms": round(self.oldest_age_s * 1e3, 3),
                "queued_ms": round(self.queued_s * 1e3, 3),
                "max_age_ms": round(self.max_age_s * 1e3, 3)}
