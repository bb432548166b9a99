"""Smoke run of bench/tms_events.py over real parts: schema and counts, no timings asserted."""

from __future__ import annotations

from pathlib import Path

from bench.tms_events import run

STAT_KEYS = {"p50", "p90", "p99", "p999", "max", "mean", "n"}


def test_tms_event_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tms_events.json"
    r = run(pulses=6, isi_s=0.15, out_path=out, log=lambda s: None)
    assert out.is_file()
    p = r["pulses"]  # a loaded machine may stall the producer: flagged pulses are allowed
    assert p["sent"] == p["received"] == 6 and 0 <= p["flagged_no_samples_or_outage"] <= 6
    for key in ("event_ms", "after_window_ms", "baseline_marker_ms", "baseline_sample_ms"):
        assert set(r[key]) == STAT_KEYS, key
    assert r["event_ms"]["n"] == r["after_window_ms"]["n"] == 6
    assert r["config"]["window_end_ms"] == 50.0 and "published" in r["daemon_status_tms"]
    assert r["machine"]["cores"] >= 1
