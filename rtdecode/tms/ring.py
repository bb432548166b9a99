"""A preallocated ring of recent input samples, their LSL times and their flags.

Samples are addressed by their absolute index since the ring was created (``0, 1, 2, ...``):
sample ``k`` lives in slot ``k % capacity`` while ``k >= first``. Writing copies into the
slots (no allocation, no ``np.roll``); reading an epoch copies out of them, across the wrap.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["SampleRing"]


class SampleRing:
    """The last ``capacity`` samples of ``n_channels`` channels.

    Parameters
    ----------
    capacity : int
        Samples kept (>= 1).
    n_channels : int
        Channels per sample (>= 1).

    Attributes
    ----------
    n_written : int
        Samples written since creation; the newest sample has index ``n_written - 1``.
    """

    def __init__(self, capacity: int, n_channels: int) -> None:
        if capacity < 1 or n_channels < 1:
            raise StageError(f"a sample ring needs capacity >= 1 and channels >= 1, got "
                             f"{capacity} x {n_channels}", "pass positive sizes")
        self.capacity = int(capacity)
        self.x = np.zeros((self.capacity, int(n_channels)), dtype=np.float32)
        self.t = np.zeros(self.capacity, dtype=np.float64)
        self.flags = np.zeros(self.capacity, dtype=np.uint32)
        self.n_written = 0

    @property
    def first(self) -> int:
        """Index of the oldest sample still held."""
        return max(0, self.n_written - self.capacity)

    @property
    def newest_t(self) -> float:
        """LSL time of the newest sample, s (-inf when empty)."""
        return float(self.t[(self.n_written - 1) % self.capacity]) if self.n_written else -np.inf

    def write(self, x: np.ndarray, t: np.ndarray, flags: int = 0) -> None:
        """Append samples.

        Parameters
        ----------
        x : float (n, n_channels)
            New samples (only the last ``capacity`` are kept when n is larger).
        t : float64 (n,)
            Their LSL times, s, increasing.
        flags : int
            Flag bits of the chunk (``GAP``, ``BAD_INPUT``), stored on each of its samples.
        """
        n = x.shape[0]
        skip = max(0, n - self.capacity)
        pos = (self.n_written + skip) % self.capacity
        done = skip
        while done < n:
            take = min(n - done, self.capacity - pos)
            self.x[pos:pos + take] = x[done:done + take]
            self.t[pos:pos + take] = t[done:done + take]
            self.flags[pos:pos + take] = flags
            done += take
            pos = 0
        self.n_written += n

    def index_at(self, t_query: float) -> int:
        """Index of the first held sample whose time is >= ``t_query`` (``n_written`` if none).

        A binary search over the held samples (their times increase).
        """
        lo, hi = self.first, self.n_written
        t, cap = self.t, self.capacity
        while lo < hi:
            mid = (lo + hi) // 2
            if t[mid % cap] < t_query:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def nearest(self, t_query: float) -> int:
        """Index of the held sample nearest in time to ``t_query`` (the earlier one on a tie).

        ``n_written`` when no held sample is at or after ``t_query`` yet (the nearest one may
        still come).
        """
        k = self.index_at(t_query)
        if k == self.n_written:
            return k
        if k > self.first:
            cap = self.capacity
            if t_query - self.t[(k - 1) % cap] <= self.t[k % cap] - t_query:
                return k - 1
        return k

    def read(self, start: int, out_x: np.ndarray, out_t: np.ndarray) -> int:
        """Copy samples ``start, start + 1, ...`` into ``out_x`` / ``out_t``; returns their OR-ed flags.

        Parameters
        ----------
        start : int
            Absolute index of the first sample; ``start >= first`` and
            ``start + len(out_t) <= n_written``.
        out_x : float32 (m, n_channels)
        out_t : float64 (m,)

        Raises
        ------
        StageError
            When part of the range is not held.
        """
        m = out_t.shape[0]
        if start < self.first or start + m > self.n_written:
            raise StageError(f"samples {start}..{start + m - 1} are not held (held: "
                             f"{self.first}..{self.n_written - 1})", "read inside the held range")
        pos = start % self.capacity
        done = 0
        bits = 0
        while done < m:
            take = min(m - done, self.capacity - pos)
            out_x[done:done + take] = self.x[pos:pos + take]
            out_t[done:done + take] = self.t[pos:pos + take]
            bits |= int(np.bitwise_or.reduce(self.flags[pos:pos + take]))
            done += take
            pos = 0
        return bits
