"""The recording A/B benchmark's statistics: interleaving, pooling and pairing (no timing)."""

from __future__ import annotations

import numpy as np

from bench.harness import CDF_Q
from bench.recording_ab import ab_cases, pooled, summarise


def _run(case_id: str, record: bool, e2e_ms: np.ndarray) -> dict:
    """A result dict shaped like the harness' for a run with these e2e latencies."""
    return {"case": {"id": case_id, "record": record},
            "e2e_ms": {"p50": float(np.percentile(e2e_ms, 50)), "p99": float(np.percentile(e2e_ms, 99)),
                       "max": float(e2e_ms.max()), "n": int(e2e_ms.size)},
            "e2e_cdf_ms": list(np.quantile(e2e_ms, CDF_Q)),
            "messages": {"lost_total": 0}, "daemon_status": {"record": {"dropped": {"chunks": 0}}}}


def test_cases_alternate_the_order_of_the_arms() -> None:
    ids = [c.id for c in ab_cases(3, 1.0, "")]
    assert ids == ["rec-off-0", "rec-on-0", "rec-on-1", "rec-off-1", "rec-off-2", "rec-on-2"]
    assert all(c.record == c.id.startswith("rec-on") for c in ab_cases(3, 1.0, "idle"))


def test_pooled_percentiles_weigh_runs_by_their_message_count() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.exponential(1.0, 3000), 5.0 + rng.exponential(1.0, 1000)
    got = pooled([_run("x", False, a), _run("y", False, b)])
    both = np.concatenate([a, b])
    assert got["n"] == 4000
    for key, q in (("p50", 50), ("p99", 99)):
        assert abs(got[key] - np.percentile(both, q)) < 0.05 * np.percentile(both, q), key
    # unweighted pooling would put the median near the 1,000-message run's share, not here
    assert got["p50"] < 2.0


def test_summary_pairs_each_on_run_with_its_off_twin_and_finds_a_known_cost() -> None:
    rng = np.random.default_rng(1)
    cases = []
    for k in range(6):
        base = rng.exponential(1.0, 2000)
        cases += [_run(f"rec-off-{k}", False, base), _run(f"rec-on-{k}", True, base * 1.5)]
    s = summarise(cases)
    assert len(s["pairs"]) == 6 and all(abs(p["p99_ratio"] - 1.5) < 1e-6 for p in s["pairs"])
    assert abs(s["p99_ratio"] - 1.5) < 0.02 and s["met"] is False
    lo, hi = s["p99_ratio_bootstrap_90"]
    assert lo <= s["p99_ratio"] <= hi
