"""The preallocated latency histogram reports percentiles within its bin resolution."""

from __future__ import annotations

import numpy as np

from rtdecode.service.telemetry import LatencyHistogram


def test_percentiles_match_numpy_within_bin_width() -> None:
    rng = np.random.default_rng(0)
    v = rng.lognormal(mean=np.log(1e-3), sigma=0.7, size=20000)
    h = LatencyHistogram()
    for part in np.array_split(v, 37):
        h.record(part)
    for q in (50, 90, 99, 99.9):
        exact = np.percentile(v, q)
        assert abs(h.percentile(q) - exact) / exact < 0.025
    assert h.max == v.max()
    assert h.total == v.size


def test_empty_and_reset() -> None:
    h = LatencyHistogram()
    assert np.isnan(h.percentile(50))
    h.record(0.5)
    h.reset()
    assert h.total == 0 and np.isnan(h.summary_ms()["p99"])


def test_memory_is_fixed() -> None:
    h = LatencyHistogram()
    n0 = h.counts.nbytes
    h.record(np.full(100000, 1e-4))
    h.record(1e3)  # beyond range: overflow bin, max exact
    assert h.counts.nbytes == n0
    assert h.max == 1e3
