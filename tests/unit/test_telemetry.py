"""Telemetry: the preallocated latency histogram and the per-stage timer of the daemon's tick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import DecoderConfig, ServiceConfig
from rtdecode.service.pipeline import Pipeline
from rtdecode.service.telemetry import (
    STAGE_PULL,
    STAGE_TICK,
    LatencyHistogram,
    StageTimer,
    daemon_stage_names,
)
from tests.modelfactory import linear_model


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


# -- scalar hot-path recording and the per-stage timer ------------------------------------

def test_record_value_lands_in_the_same_bins_as_record() -> None:
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.lognormal(np.log(2e-4), 1.5, 5000), [1e-9, 0.0, 5e3]])  # under/overflow too
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record(v)
    for x in v:
        b.record_value(float(x))
    # bins agree except for values within float rounding of an edge (none in this draw)
    assert np.array_equal(a.counts, b.counts)
    assert a.total == b.total and a.max == b.max
    assert abs(a.sum - b.sum) < 1e-9 * a.sum


def test_record_value_ignores_nan_and_keeps_memory_fixed() -> None:
    h = LatencyHistogram()
    counts = h.counts
    h.record_value(float("nan"))
    assert h.total == 0
    for _ in range(1000):
        h.record_value(1e-3)
    assert h.counts is counts and h.total == 1000
    assert abs(h.percentile(50) - 1e-3) / 1e-3 < 0.015


def test_stage_timer_records_each_stage_and_summarises_only_used_ones() -> None:
    names = daemon_stage_names(["a", "b"])
    assert names[:6] == ["pull", "input", "publish", "fusion", "fusion_publish", "tick"]
    assert names[STAGE_PULL] == "pull" and names[STAGE_TICK] == "tick"
    assert names[6:] == ["chain:a", "model:a", "post:a", "chain:b", "model:b", "post:b"]
    tm = StageTimer(names)
    for _ in range(100):
        tm.add_ns(STAGE_PULL, 250_000)  # 250 µs
    tm.add_ns(tm.index("model:b"), 40_000)
    s = tm.summary_ms()
    assert set(s) == {"pull", "model:b"}
    assert s["pull"]["count"] == 100
    assert abs(s["pull"]["p50"] - 0.25) / 0.25 < 0.03
    assert abs(s["pull"]["mean"] - 0.25) < 1e-9
    assert s["model:b"]["max"] == 0.04
    tm.reset()
    assert tm.summary_ms() == {}


def test_stage_timer_rejects_duplicates_and_names_unknown_stages() -> None:
    with pytest.raises(ValueError, match="unique"):
        StageTimer(["x", "x"])
    with pytest.raises(KeyError, match="known"):
        StageTimer(["x"]).index("y")


def _pipeline(tmp_path: Path) -> Pipeline:
    chain = [{"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": 5.0},
             {"kind": "decimate", "factor": 4}]
    model = linear_model(tmp_path / "m.onnx", rate_hz=200.0, channels=4, chain=chain, lags=3)
    return Pipeline([DecoderConfig(name="d", model=model)], 200.0, 4).open()


def test_pipeline_times_its_stages_only_when_a_timer_is_attached(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((400, 4)).astype(np.float32)
    t = np.arange(400) / 200.0
    on, off = _pipeline(tmp_path), _pipeline(tmp_path)
    tm = StageTimer(daemon_stage_names(["d"]))
    on.attach_timer(tm)
    frames = 0
    for i in range(0, 400, 2):  # 2-sample chunks: a model frame every other chunk
        (a,) = on.process(x[i:i + 2], t[i:i + 2])
        (b,) = off.process(x[i:i + 2], t[i:i + 2])
        np.testing.assert_array_equal(a.y, b.y)  # timing never changes the output
        frames += a.y.shape[0]
    s = tm.summary_ms()
    assert s["input"]["count"] == 200 and s["chain:d"]["count"] == 200
    assert s["model:d"]["count"] == frames == 100  # 0-frame ticks are not model steps
    assert s["post:d"]["count"] == frames
    assert "pull" not in s  # the daemon's stages are the daemon's
    on.attach_timer(None)
    on.process(x[:2], t[:2])
    assert tm.summary_ms()["input"]["count"] == 200


def test_stage_timing_is_a_service_setting_default_on() -> None:
    assert ServiceConfig().stage_timing is True
    assert ServiceConfig(stage_timing=False).stage_timing is False
