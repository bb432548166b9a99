"""The iBCI benchmark's smoke test over real parts: a small broadband stream (16 ch @ 30 kHz,
2 s) through the daemon's front end and through the bare transport, summarised and tabled. No
timing is asserted (timings belong in ``bench/``, run on a quiet machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness import run_case
from bench.ibci import CHANNELS, RATES, ibci_cases, summary, table, verdict

pytest.importorskip("onnx")  # the benchmark model is written with the onnx helpers


def test_ibci_cases_cover_the_sweep() -> None:
    cases = ibci_cases(60.0, 10.0, ["cpu"])
    points = {(c.channels, c.rate_hz) for c in cases}
    assert points == {(c, 30000.0) for c in CHANNELS} | {(1024, r) for r in RATES}
    assert all(c.data == "broadband" and not c.index_channel for c in cases)
    assert sum(c.target == "daemon" for c in cases) == sum(c.target == "bare" for c in cases) == len(points)
    head = [c for c in cases if c.group == "ibci"]
    assert {(c.target, c.channels, c.rate_hz, c.chunk, c.seconds) for c in head} == {
        ("bare", 1024, 30000.0, 30, 60.0), ("daemon", 1024, 30000.0, 30, 60.0)}
    assert len(ibci_cases(60.0, 10.0, ["cpu"], sweep=False)) == 2


def test_small_ibci_pair_runs_and_summarises(tmp_path: Path) -> None:
    cases = ibci_cases(2.0, 2.0, ["cpu"], sweep=False)
    for c in cases:
        c.channels, c.settle_s = 16, 0.5
    results = [run_case(c, tmp_path) for c in cases]
    for r in results:
        inp = r["input"]
        assert inp["samples_pushed"] == 60000 and inp["samples_in"] == 60000
        assert inp["gaps"] == 0
        assert r["messages"]["lost_total"] == 0
    daemon = next(r for r in results if r["case"]["target"] == "daemon")
    # one estimate per 20 ms bin (600 samples), every one of them
    assert daemon["messages"]["expected_index_step"] == 600
    assert daemon["daemon_status"]["messages_out"] == 100
    assert daemon["daemon_status"]["stages_ms"]["chain:dec"]["count"] > 0
    s = summary(results)
    assert set(s["headline"]["met"]) == {"lost", "cpu", "p99"} and s["headline"]["samples_lost"] == 0
    assert {p["target"] for p in s["points"]} == {"bare", "daemon"}
    ok, why = verdict(daemon)
    assert ok == (not why)
    text = table({"ibci": s})
    assert "| daemon |" in text and "| bare |" in text and "keeps up" in text
