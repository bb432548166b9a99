"""Smoke run of bench/m2m_serve.py over real parts (tiny model): schema and counts, no timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from bench.m2m_serve import run  # noqa: E402

STAT_KEYS = {"p50", "p90", "p99", "p999", "max", "mean", "n"}


def test_m2m_serve_benchmark_smoke(m2m_tiny: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "m2m_serve.json"
    r = run(m2m_tiny["model"], pulses=4, poses=3, isi_s=0.6, leads_s=[0.3], out_path=out)
    assert out.is_file()
    for key in ("predict_cold_ms", "predict_warm_ms", "onnx_ms", "lattice_ms"):
        assert set(r["compute"][key]) == STAT_KEYS and r["compute"][key]["n"] == 3, key
    live = r["live"][0]
    assert live["pulses"]["paired"] == live["pulses"]["sent"] == 4
    assert live["prediction_after_pulse_ms"]["n"] == 4
    assert 0 <= live["share_predicted_before_measurement"] <= 1
    assert r["machine"]["cores"] >= 1
