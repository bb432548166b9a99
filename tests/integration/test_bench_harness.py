"""The latency harness runs end to end over real parts (LSL, ``rtdecode serve``, ZeroMQ).

A tiny case (4 channels at 500 Hz, 2 s) through the daemon and through the bare-transport
relay: the result has the documented schema and its counts add up. No timing is asserted
(timings belong in ``bench/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.harness import CDF_Q, Case, run_case

pytest.importorskip("onnx")  # the linear benchmark model is written with the onnx helpers

STAT_KEYS = {"p50", "p90", "p99", "p999", "max", "mean", "std", "n"}


def _check_common(r: dict, case: Case) -> None:
    assert r["case"]["id"] == case.id and r["case"]["target"] == case.target
    for key in ("e2e_ms", "age_ms", "hop_ms", "in_unit_ms"):
        assert set(r[key]) == STAT_KEYS, key
    m, inp = r["messages"], r["input"]
    assert m["received"] > 0
    assert r["e2e_ms"]["n"] <= m["received"]  # the settle second is left out of the statistics
    assert len(r["e2e_cdf_ms"]) == len(CDF_Q)
    assert np.all(np.diff(r["e2e_cdf_ms"]) >= 0)
    # every sample pushed reached the unit, in order, once (index channel)
    assert inp["samples_pushed"] == int(round(case.seconds * case.rate_hz))
    assert inp["samples_in"] == inp["samples_pushed"] and inp["samples_missing"] == 0
    assert inp["index_lost"] == 0 and inp["index_dup"] == 0
    assert m["seq_restarts"] == 0 and m["subscriber_overflow"] == 0
    assert m["lost_total"] == (m["seq_gaps"] + m["frames_missing"] + max(inp["samples_missing"], 0)
                               + m["subscriber_overflow"])
    # every message maps onto a pushed sample, far from the half-sample ambiguity
    assert r["index_map_residual_samples"]["unmapped"] == 0
    assert r["index_map_residual_samples"]["max"] < 0.25
    rss = r["unit"]["rss_mb"]
    assert rss["end"] is not None and rss["samples"]


@pytest.mark.parametrize("busy_poll_s", [0.0, 0.002], ids=["block", "busy-poll"])
def test_harness_daemon_case(tmp_path: Path, busy_poll_s: float) -> None:
    case = Case("tiny-daemon", "daemon", 4, 500.0, seconds=2.0, model="linear", publish="every",
                group="test", settle_s=0.5, busy_poll_s=busy_poll_s)
    r = run_case(case, tmp_path)
    _check_common(r, case)
    m = r["messages"]
    # no decimation: one message per input sample, each one sample newer than the last
    assert m["expected_index_step"] == 1 and m["frames_missing"] == 0
    assert m["received"] == r["input"]["samples_pushed"] - m["seq_gaps"]
    st = r["daemon_status"]
    assert st["messages_out"] == m["received"] + m["seq_gaps"]
    stages = st["stages_ms"]
    for name in ("pull", "input", "chain:dec", "model:dec", "post:dec", "publish", "tick"):
        assert stages[name]["count"] > 0, name
    assert stages["model:dec"]["count"] <= stages["tick"]["count"]


def test_harness_daemon_case_with_recording(tmp_path: Path) -> None:
    """The "recording on" case: same schema, and the recorder kept every sample and frame."""
    pytest.importorskip("h5py")
    case = Case("tiny-record", "daemon", 4, 500.0, seconds=2.0, model="linear", publish="every",
                group="test", settle_s=0.5, record=True)
    r = run_case(case, tmp_path)
    _check_common(r, case)
    rec = r["daemon_status"]["record"]
    assert rec["error"] is None and rec["dropped"] == {"chunks": 0, "samples": 0, "frames": 0}
    assert rec["written"]["samples"] > 0 and list(tmp_path.glob("*-sessions/*.h5"))


def test_recording_cost_compares_the_twin_cases() -> None:
    from bench.profiles import TARGET, recording_cost

    def res(p50: float, p99: float, cpu: float) -> dict:
        return {"e2e_ms": {"p50": p50, "p99": p99, "p999": 2 * p99}, "unit": {"cpu_share": cpu},
                "messages": {"lost_total": 0}, "daemon_status": {"record": {"dropped": {}}}}

    c = recording_cost(res(1.0, 2.0, 0.30), res(1.1, 2.1, 0.33))
    assert c["p99_ratio"] == 1.05 and c["p50_ratio"] == 1.1 and c["cpu_share_on_minus_off"] == 0.03
    assert c["met"] is True and TARGET["recording_p99_ratio_max"] == 1.10
    assert recording_cost(res(1.0, 2.0, 0.3), res(1.0, 2.4, 0.3))["met"] is False


def test_harness_bare_transport_case(tmp_path: Path) -> None:
    case = Case("tiny-bare", "bare", 4, 500.0, seconds=2.0, group="test", settle_s=0.5)
    r = run_case(case, tmp_path)
    _check_common(r, case)
    assert r["daemon_status"] is None
    # one message per pulled chunk: never more messages than samples
    assert r["messages"]["received"] <= r["input"]["samples_pushed"]


def test_cold_path_benchmark_runs() -> None:
    from bench.cold_path import model_path, publish_path

    pub = publish_path(gaps_ms=(0.0, 1.0), n=20)
    assert [r["gap_ms"] for r in pub] == [0.0, 1.0]
    for r in pub:
        for key in ("local_clock_us", "encode_us", "send_us"):
            assert r[key]["n"] == 20 and 0 < r[key]["p50"] <= r[key]["p99"]
    mod = model_path(ticks=60)
    assert {(r["wait"], r["keep_warm"]) for r in mod} == {(w, k) for w in ("none", "busy", "sleep")
                                                          for k in (False, True)}
    for r in mod:  # 2-sample chunks at 2048 Hz, one 102.4 Hz frame per 10 chunks
        assert r["chain_us"]["n"] == 60 and r["model_step_us"]["n"] == 6
