"""Warm-up until the step time is stable, before the service reports ready.

The first runs of a session are slow for reasons that have nothing to do with the model:
memory arenas grow, caches fill, cuDNN picks algorithms, TensorRT builds (or loads) its
engine, CUDA graphs are captured. The daemon runs the model on zeros until the median of
the last ``window`` step times moves by less than ``tolerance`` against the ``window``
before it (or a run / time limit is reached), so the first real sample meets a warm model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WarmupReport:
    """What the warm-up did.

    Attributes
    ----------
    runs : int
        Steps run.
    median_s : float
        Median step time of the last window, s.
    first_s : float
        Time of the first step, s (TensorRT engine build / load shows here).
    stable : bool
        Whether the stability criterion was met (False: stopped by ``max_runs`` / ``max_s``).
    elapsed_s : float
        Wall time of the whole warm-up, s.
    """

    runs: int
    median_s: float
    first_s: float
    stable: bool
    elapsed_s: float


def warm_up_until_stable(step: Callable[[], object], *, min_runs: int = 20, window: int = 10,
                         tolerance: float = 0.1, max_runs: int = 2000, max_s: float = 5.0
                         ) -> WarmupReport:
    """Call ``step`` until its time is stable.

    Parameters
    ----------
    step : callable
        One model step (its result is ignored).
    min_runs : int
        At least this many steps (0: no warm-up at all).
    window : int
        Steps per median window.
    tolerance : float
        Stable when ``|median(last window) − median(window before)| ≤ tolerance · median(window before)``.
    max_runs : int
        Stop after this many steps even if not stable.
    max_s : float
        Stop after this long (s, not counting the first step, which may build an engine).

    Returns
    -------
    WarmupReport
    """
    if min_runs <= 0:
        return WarmupReport(0, 0.0, 0.0, True, 0.0)
    t_start = time.perf_counter()
    times: list[float] = []
    stable = False
    deadline = float("inf")
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if len(times) == 1:
            deadline = t1 + max_s
        n = len(times)
        if n >= max(min_runs, 2 * window):
            last = float(np.median(times[-window:]))
            prev = float(np.median(times[-2 * window:-window]))
            if abs(last - prev) <= tolerance * prev:
                stable = True
                break
        if n >= max(max_runs, min_runs) or t1 >= deadline:
            break
    med = float(np.median(times[-window:]))
    return WarmupReport(len(times), med, times[0], stable, time.perf_counter() - t_start)


def time_steps(step: Callable[[], object], steps: int) -> np.ndarray:
    """Wall time of ``steps`` calls of ``step``, s (float64, one entry per call)."""
    out = np.empty(max(0, steps), np.float64)
    for i in range(out.size):
        t0 = time.perf_counter()
        step()
        out[i] = time.perf_counter() - t0
    return out
