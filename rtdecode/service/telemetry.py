"""Preallocated latency histograms and per-stage timers (no per-tick allocation or logging).

:class:`LatencyHistogram` keeps log-spaced bins in one preallocated array;
:meth:`LatencyHistogram.record_value` is the scalar hot-path entry (arithmetic bin index,
one in-place increment). :class:`StageTimer` holds one histogram per stage of the
daemon's tick (pull, input checks, each decoder's chain / model / post-processing,
publish, fusion). The tick times itself with laps, ``t = timer.lap(STAGE, t)``: a
:class:`StageTimer` records the time since ``t`` and returns now; :data:`NO_TIMER` (timing
off) does nothing and returns 0, so the data path has no timing branches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["LatencyHistogram", "NO_TIMER", "NullTimer", "StageTimer", "STAGE_PULL", "STAGE_INPUT",
           "STAGE_PUBLISH", "STAGE_FUSION", "STAGE_FUSION_PUBLISH", "STAGE_TICK", "daemon_stage_names",
           "decoder_stages"]


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
        self._n = n
        self._lmin = float(np.log10(min_s))
        self._scale = n / float(decades)  # bins per unit of log10
        self._min = float(min_s)

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

    def record_value(self, value_s: float) -> None:
        """Add one value (s) without creating arrays: the hot-path form of :meth:`record`.

        The bin index is computed from the logarithm (same bins as :meth:`record` up to
        floating-point rounding at an edge); NaN is ignored.
        """
        if value_s != value_s:  # NaN
            return
        if value_s < self._min:
            i = 0
        else:
            i = int((math.log10(value_s) - self._lmin) * self._scale) + 1
            if i > self._n + 1:
                i = self._n + 1
        self.counts[i] += 1
        self.total += 1
        self.sum += value_s
        if value_s > self.max:
            self.max = value_s

    def since(self, mark: LatencyHistogram) -> LatencyHistogram:
        """The values recorded after ``mark`` (a :meth:`copy` of this histogram taken earlier).

        ``max`` is the largest value since the mark, to the bin's upper edge.
        """
        out = self.copy()
        out.counts -= mark.counts
        out.total -= mark.total
        out.sum -= mark.sum
        nz = np.flatnonzero(out.counts)
        out.max = 0.0 if nz.size == 0 else float(min(self.max, np.append(self.edges, self.max)[nz[-1]]))
        return out

    def copy(self) -> LatencyHistogram:
        """An independent copy (a mark for :meth:`since`)."""
        out = LatencyHistogram.__new__(LatencyHistogram)
        out.__dict__.update(self.__dict__)
        out.counts = self.counts.copy()
        return out

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


#: Fixed stage indices of :func:`daemon_stage_names` (decoder stages follow them).
STAGE_PULL, STAGE_INPUT, STAGE_PUBLISH, STAGE_FUSION, STAGE_FUSION_PUBLISH, STAGE_TICK = range(6)


def decoder_stages(k: int) -> tuple[int, int, int]:
    """Indices of decoder ``k``'s ``chain``, ``model`` and ``post`` stages in :func:`daemon_stage_names`."""
    first = STAGE_TICK + 1 + 3 * k
    return first, first + 1, first + 2


def daemon_stage_names(decoders: Sequence[str]) -> list[str]:
    """Stage names of the daemon's tick, in index order.

    ``pull`` (time in the LSL pull, *including* the wait for the first sample), ``input``
    (input checks / repair), ``publish`` (encode + send of every decoder's messages),
    ``fusion`` (Kalman update with the decoders' outputs), ``fusion_publish`` (fused estimate +
    send), ``tick`` (from the pull's return to the end of the tick: the processing time of a
    chunk), then per decoder ``chain:<name>``, ``model:<name>``, ``post:<name>`` (flags, finite
    check, smoothing).
    """
    names = ["pull", "input", "publish", "fusion", "fusion_publish", "tick"]
    for d in decoders:
        names += [f"chain:{d}", f"model:{d}", f"post:{d}"]
    return names


class StageTimer:
    """One preallocated duration histogram per named stage.

    Parameters
    ----------
    names : sequence of str
        Stage names; a stage's index is its position (see :func:`daemon_stage_names`).
    min_s, max_s : float
        Range of the histograms, s.
    bins_per_decade : int
        Histogram resolution.

    Notes
    -----
    :meth:`add_ns` is the only call on the hot path: one float multiply, one log, one
    in-place increment. Stages never recorded are left out of :meth:`summary_ms`.
    """

    def __init__(self, names: Sequence[str], *, min_s: float = 1e-7, max_s: float = 10.0,
                 bins_per_decade: int = 100) -> None:
        self.names = list(names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"stage names must be unique, got {self.names}")
        self._index = {n: i for i, n in enumerate(self.names)}
        self.hists = [LatencyHistogram(min_s, max_s, bins_per_decade) for _ in self.names]

    def index(self, name: str) -> int:
        """Index of stage ``name`` (KeyError names the known stages)."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown stage {name!r}; known: {self.names}") from None

    def add_ns(self, stage: int, dt_ns: int) -> None:
        """Record one duration of stage ``stage`` (index), in ns (``perf_counter_ns`` difference)."""
        self.hists[stage].record_value(dt_ns * 1e-9)

    def now(self) -> int:
        """The start of a span, ns (``perf_counter_ns``)."""
        return time.perf_counter_ns()

    def lap(self, stage: int, since_ns: int) -> int:
        """Record ``now - since_ns`` as one duration of ``stage``; returns now (the next span's start)."""
        t = time.perf_counter_ns()
        self.hists[stage].record_value((t - since_ns) * 1e-9)
        return t

    def reset(self) -> None:
        """Forget every duration."""
        for h in self.hists:
            h.reset()

    def summary_ms(self) -> dict[str, dict[str, float]]:
        """Per recorded stage: p50 / p90 / p99 / p99.9 / max / mean (ms) and count."""
        out: dict[str, dict[str, float]] = {}
        for name, h in zip(self.names, self.hists, strict=True):
            if h.total == 0:
                continue
            s = {k: round(v, 4) for k, v in h.summary_ms().items()}
            s["mean"] = round(h.sum / h.total * 1e3, 4)
            s["count"] = h.total
            out[name] = s
        return out


class NullTimer:
    """The timer when stage timing is off: :meth:`now` and :meth:`lap` only return 0."""

    def now(self) -> int:
        """0 (nothing is timed)."""
        return 0

    def lap(self, stage: int, since_ns: int) -> int:
        """Nothing to record; 0."""
        return 0

    def summary_ms(self) -> None:
        """No summary: timing is off."""
        return None


#: The shared timer of an untimed daemon or pipeline.
NO_TIMER = NullTimer()
