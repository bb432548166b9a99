"""The behind state machine (rtdecode.service.behind.Backlog) on pulls of real chunks: when it
enters, what ``skip`` keeps, and that one young pull does not end an episode."""

from __future__ import annotations

import numpy as np

from rtdecode.service.behind import Backlog
from rtdecode.types import Chunk, Flags

RATE = 1000.0
BUDGET = 0.1


def _pull(backlog: Backlog, now: float, oldest_age: float, n: int) -> Chunk | None:
    """Pull ``n`` samples at ``now``; the oldest waited ``oldest_age`` s in the daemon's queue (the
    loop was busy that long), the rest follow at RATE."""
    t = now - oldest_age + np.arange(n) / RATE
    chunk = Chunk(samples=np.zeros((n, 2), np.float32), t_lsl=t, first_index=0, flags=0)
    return backlog.on_pull(chunk, now, waiting=0, busy_s=oldest_age)


def test_three_late_pulls_enter_and_skip_keeps_a_quarter_budget() -> None:
    b = Backlog(BUDGET, "skip")
    assert _pull(b, 10.0, 0.15, 150) is not None and not b.behind  # a hiccup
    _pull(b, 10.2, 0.20, 200)
    kept = _pull(b, 10.5, 0.30, 300)
    assert b.behind and b.episodes == 1
    assert kept is not None and kept.flags & Flags.GAP
    # exactly the samples less than a quarter budget older than the newest pulled one are kept
    # (25 ms at 1 kHz: 25 or 26 with the newest)
    assert (kept.t_lsl[-1] - kept.t_lsl < 0.25 * BUDGET).all() and 25 <= kept.n <= 26
    assert b.samples_skipped + kept.n == 300 and kept.first_index == b.samples_skipped


def test_one_young_pull_while_behind_does_not_end_the_episode() -> None:
    b = Backlog(BUDGET, "skip")
    for k in range(3):
        _pull(b, 10.0 + 0.2 * k, 0.2, 200)
    assert b.behind
    # skip cut the last pull to 25 samples, so the next pull is young although decoding is slow
    assert _pull(b, 10.45, 0.01, 10) is not None and b.behind
    _pull(b, 10.47, 0.03, 30)  # the backlog regrows: skip acts at once, no new episode
    assert b.behind and b.episodes == 1


def test_caught_up_after_three_young_pulls_spanning_the_budget() -> None:
    b = Backlog(BUDGET, "none")
    for k in range(3):
        _pull(b, 10.0 + 0.2 * k, 0.2, 200)
    assert b.behind
    now = 11.0
    for _ in range(3):  # three young pulls, but within 20 ms: not yet
        now += 0.01
        _pull(b, now, 0.005, 5)
    assert b.behind
    while now < 11.0 + BUDGET + 0.02:
        now += 0.01
        _pull(b, now, 0.005, 5)
    assert not b.behind and b.episodes == 1


def test_samples_the_source_sent_late_make_no_backlog() -> None:
    """A source whose samples arrive 80 ms after their time stamps (a buffering amplifier, a
    stalled sender) while the loop keeps up: not behind, and ``skip`` drops nothing."""
    b = Backlog(BUDGET / 2, "skip")
    now = 10.0
    for _ in range(50):
        now += 0.001
        t = now - 0.080 + np.arange(2) / RATE
        out = b.on_pull(Chunk(samples=np.zeros((2, 2), np.float32), t_lsl=t, first_index=0, flags=0),
                        now, waiting=0, busy_s=0.0002)
        assert out is not None and out.n == 2 and not out.flags & Flags.GAP
    assert not b.behind and b.episodes == 0 and b.samples_skipped == 0
    assert b.oldest_age_s > BUDGET / 2 and b.queued_s < 0.001


def test_samples_left_in_the_inlet_carry_their_wait() -> None:
    """A pull capped below what waits: the rest keeps waiting through the next busy stretch."""
    b = Backlog(BUDGET, "none")
    t0 = 10.0
    for k in range(5):  # each pull takes 20 ms of a 1 s backlog; the loop is busy 40 ms per pull
        now = t0 + 0.04 * (k + 1)
        t = t0 - 1.0 + 0.02 * k + np.arange(20) / RATE
        b.on_pull(Chunk(samples=np.zeros((20, 2), np.float32), t_lsl=t, first_index=0, flags=0),
                  now, waiting=500, busy_s=0.04)
    assert b.behind and b.episodes == 1 and abs(b.queued_s - 0.2) < 1e-9  # late from the 3rd pull
