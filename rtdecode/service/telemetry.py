"""Preallocated latency histograms and run counters (no per-tick allocation or logging)."""

from __future__ import annotations

import numpy as np


class LatencyHistogram:
    """Log-spaced histogram of durations (s), fixed memory.

    Parameters
    ----------
    min_s, max_s : float
        Range covered; values outside land in the first / last bin (and ``max`` is exact).
    bins_per_decade : int
        Resolution: 200 per decade → ~1.2 % relative bin width.
    """

    def __init__(self, min_s: float = 1e-6, max_s: float = 100.0, bins_per_decade: int = 200) -> None:
        decades = np.log10(max_s) - np.log10(min_s)
        n = int(np.ceil(decades * bins_per_decade))
        self.edges = np.logspace(np.log10(min_s), np.log10(max_s), n + 1)
        self.counts = np.zeros(n + 2, dtype=np.int64)  # [underflow, bins..., overflow]
        self.total = 0
        self.max = 0.0
        self.sum = 0.0

    def record(self, values: np.ndarray | float) -> None:
        """Add one value or an array of values (s)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 0:
            return
        idx = np.searchsorted(self.edges, v, side="right")
        np.add.at(self.counts, idx, 1)
        self.total += v.size
        self.sum += float(v.sum())
        vmax = float(v.max())
        if vmax > self.max:
            self.max = vmax

    def reset(self) -> None:
        """Forget every value."""
        self.counts[:] = 0
        self.total = 0
        self.max = 0.0
        self.sum = 0.0

    def percentile(self, q: float) -> float:
        """Upper edge of the bin holding the q-th percentile (s); NaN when empty."""
        if self.total == 0:
            return float("nan")
        target = q / 100.0 * self.total
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, target, side="left"))
        if i == 0:
            return float(self.edges[0])
        if i >= len(self.edges):
            return self.max
        return float(min(self.edges[i], self.max))

    def summary_ms(self) -> dict[str, float]:
        """p50 / p90 / p99 / p99.9 / max in milliseconds (NaN when empty)."""
        return {
            "p50": self.percentile(50) * 1e3,
            "p90": self.percentile(90) * 1e3,
            "p99": self.percentile(99) * 1e3,
            "p999": self.percentile(99.9) * 1e3,
            "max": self.max * 1e3 if self.total else float("nan"),
            "count": float(self.total),
        }
