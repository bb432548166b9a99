"""Model failures in a running daemon (three real cortex decoders + Kalman fusion, real LSL +
ZeroMQ): a decoder whose ONNX Runtime session is lost, and one that misses its deadline.

The failing decoder publishes its fallback (``on_failure``: hold / zero) flagged DEGRADED,
the fusion excludes it and carries on with the others, each episode is logged once (and its
recovery once), and the loop never stops. Faults: the session is really closed and reopened
(``StreamingModel.close`` / ``open``); the deadline miss is a test-only sleep around the real
step (a model this small cannot be made late otherwise).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import load_config
from rtdecode.lsl import pylsl
from rtdecode.service.daemon import Daemon
from rtdecode.sinks.protocol import Message
from rtdecode.sources.simulator import CortexSimulator, SimulatorOutlets
from rtdecode.types import Flags
from tests.faultkit import ROOT, drain, record, subscriber

MODELS = ROOT / "models"
DEADLINE_MS = 25.0
SLOW_S = 0.04  # a late step: > DEADLINE_MS, short enough that the loop still ticks ~20 times a second


def _between(msgs: list[Message], topic: str, t0: float, t1: float) -> list[Message]:
    return [m for m in msgs if m.topic == topic and t0 <= m.t_publish <= t1]


def test_failing_and_late_decoders_degrade_then_recover(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, caplog: pytest.LogCaptureFixture,
        request: pytest.FixtureRequest) -> None:
    cfg = load_config(data={
        "source": {"name": unique_name, "channels": 50, "rate_hz": 1000.0, "resolve_timeout_s": 20},
        "decoders": [
            {"name": "kf", "model": str(MODELS / "cortex_kf.onnx")},  # on_failure = hold
            {"name": "wiener", "model": str(MODELS / "cortex_wiener.onnx"),
             "deadline_ms": DEADLINE_MS, "on_failure": "zero"},
            {"name": "pv", "model": str(MODELS / "cortex_pv.onnx")},
        ],
        "fusion": {"model": str(MODELS / "cortex_fusion.json"), "decoders": ["kf", "wiener", "pv"],
                   "rate_hz": 50.0},
        "sink": {"endpoint": ipc_endpoint, "heartbeat_s": 0.2},
        # a latency budget far above the test machine's stalls: LATE (the machine's timing, checked
        # exactly in test_behind) must not mask the flags of the faults under test
        "service": {"warmup_runs": 2, "stale_after_s": 1.0, "latency_budget_ms": 1000.0},
    })
    caplog.set_level(logging.INFO, logger="rtdecode.service.pipeline")
    daemon = Daemon(cfg)
    rc: list[int] = []
    runner = threading.Thread(target=lambda: rc.append(daemon.run()), daemon=True)
    sim = SimulatorOutlets(CortexSimulator(seed=5), name=unique_name).open()
    stop_sim = threading.Event()
    feeder = threading.Thread(target=sim.run, args=(stop_sim,), daemon=True)
    msgs: list[Message] = []
    marks: dict[str, float] = {}
    alive = []
    with subscriber(ipc_endpoint, "kf", "wiener", "pv", "fused") as sub:
        try:
            runner.start()
            feeder.start()
            end = time.monotonic() + 30
            while daemon.state != "running" and time.monotonic() < end:
                time.sleep(0.05)
            assert daemon.state == "running" and daemon.pipeline is not None
            kf, wiener = daemon.pipeline.decoders[0].model, daemon.pipeline.decoders[1].model
            drain(sub, 1.5, msgs)
            marks["kf_fail"] = pylsl.local_clock()
            kf.close()  # the session is gone: every step raises ModelError
            drain(sub, 1.0, msgs)
            marks["kf_fix"] = pylsl.local_clock()
            kf.open()
            drain(sub, 1.0, msgs)
            alive.append(runner.is_alive())
            marks["wiener_slow"] = pylsl.local_clock()
            real_step = wiener.step

            def late_step(frames: np.ndarray) -> np.ndarray:
                if frames.shape[0]:
                    time.sleep(SLOW_S)
                return real_step(frames)

            wiener.step = late_step  # type: ignore[method-assign]
            drain(sub, 1.5, msgs)
            marks["wiener_fix"] = pylsl.local_clock()
            del wiener.step  # back to the class method
            drain(sub, 1.0, msgs)
            alive.append(runner.is_alive())
            status = daemon._status()
        finally:
            daemon.stop.set()
            runner.join(10)
            stop_sim.set()
            feeder.join(5)
            sim.close()
    assert rc == [0] and all(alive), "the loop stopped"
    assert all(np.isfinite(m.values).all() for m in msgs)
    kf_pre = [m for m in msgs if m.topic == "kf" and m.t_publish < marks["kf_fail"]]
    assert kf_pre and kf_pre[-1].flags == Flags.OK
    # kf fails: its last good value, held, flagged DEGRADED | HOLD
    kf_bad = _between(msgs, "kf", marks["kf_fail"] + 0.1, marks["kf_fix"] - 0.05)
    assert len(kf_bad) > 20
    assert all(m.flags & Flags.DEGRADED and m.flags & Flags.HOLD for m in kf_bad)
    assert all(np.array_equal(m.values, kf_pre[-1].values) for m in kf_bad)
    # wiener late: zeros flagged DEGRADED (on_failure = zero, not a held value)
    w_bad = _between(msgs, "wiener", marks["wiener_slow"] + 0.15, marks["wiener_fix"] - 0.1)
    assert w_bad and all(m.flags & Flags.DEGRADED and not m.flags & Flags.HOLD
                         and not m.values.any() for m in w_bad)
    # the fused output goes on without the failing decoder, flagged DEGRADED
    for a, b in (("kf_fail", "kf_fix"), ("wiener_slow", "wiener_fix")):
        fused = _between(msgs, "fused", marks[a] + 0.15, marks[b] - 0.1)
        assert len(fused) > 10 and all(m.flags & Flags.DEGRADED and not m.flags & Flags.STALE
                                       for m in fused), a
    # every decoder (and the fusion) is OK again after each fault
    for topic, mark in (("kf", "wiener_slow"), ("wiener", None), ("pv", None), ("fused", None)):
        t1 = marks[mark] if mark else float("inf")
        lo = marks["kf_fix" if topic == "kf" else "wiener_fix"] + 0.5
        tail = _between(msgs, topic, lo, t1)
        assert tail and tail[-1].flags == Flags.OK, (topic, [int(m.flags) for m in tail[-5:]])
    dec = {d["name"]: d for d in status["decoders"]}
    assert dec["kf"]["failures"] > 10 and dec["kf"]["failure_episodes"] == 1
    assert dec["wiener"]["deadline_misses"] > 5 and dec["wiener"]["failure_episodes"] >= 1
    assert not dec["kf"]["failing"] and not dec["wiener"]["failing"]
    assert dec["pv"]["failure_episodes"] == 0
    # logged once per episode, and the recovery once
    for name in ("kf", "wiener"):
        failing = [r for r in caplog.records if r.getMessage().startswith(f"decoder {name} failing")]
        recovered = [r for r in caplog.records if r.getMessage().startswith(f"decoder {name} recovered")]
        assert len(failing) == len(recovered) == dec[name]["failure_episodes"], name
    first = {}
    for key, topic, flag in (("kf_fail", "kf", Flags.DEGRADED), ("wiener_slow", "wiener", Flags.DEGRADED)):
        m = next(m for m in msgs if m.topic == topic and m.t_publish >= marks[key] and m.flags & flag)
        first[key] = m
    recover = {}
    for key, topic in (("kf_fix", "kf"), ("wiener_fix", "wiener")):
        m = next(m for m in msgs if m.topic == topic and m.t_publish >= marks[key]
                 and not m.flags & Flags.DEGRADED)
        recover[key] = m
    record(request, "model_failures", {
        "fault": "session lost (kf, hold) / deadline miss (wiener, zero), with fusion",
        "kf_detect_s": round(first["kf_fail"].t_publish - marks["kf_fail"], 4),
        "kf_recover_s": round(recover["kf_fix"].t_publish - marks["kf_fix"], 4),
        "wiener_detect_s": round(first["wiener_slow"].t_publish - marks["wiener_slow"], 4),
        "wiener_recover_s": round(recover["wiener_fix"].t_publish - marks["wiener_fix"], 4),
        "deadline_ms": DEADLINE_MS, "injected_step_s": SLOW_S,
        "kf_failed_calls": dec["kf"]["failures"], "wiener_deadline_misses": dec["wiener"]["deadline_misses"],
        "wiener_episodes": dec["wiener"]["failure_episodes"],
        "fusion_kf_unhealthy": status["fusion"]["decoders"][0]["unhealthy"],
    })
