"""Loss of input over real LSL + ZeroMQ: STALE safe values at the output rate, reconnection to
a restarted rig, and no old buffered data served as fresh after an outage.

The measured times to detect and to recover are reported (``-s`` / out/reliability/*.json),
never asserted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from rtdecode.sinks.protocol import Message
from rtdecode.types import Flags
from tests.faultkit import (
    PY,
    Producer,
    collect,
    drain,
    record,
    serve,
    stop,
    subscriber,
    wait_status,
    write_config,
)
from tests.modelfactory import linear_model

RATE = 500.0
BIN = 10  # model frames at 50 Hz
OUT_HZ = RATE / BIN
STALE_AFTER = 0.25
SAFE = [7.0, -7.0]


def _model(tmp_path: Path) -> Path:
    return linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3,
                        chain=[{"kind": "bin", "factor": BIN, "reduce": "mean"}])


def _cfg(tmp_path: Path, name: str, endpoint: str, service: str) -> Path:
    return write_config(tmp_path / "serve.toml", name=name, model=_model(tmp_path), endpoint=endpoint,
                        source=f"channels = 4\nrate_hz = {RATE}\nindex_channel = 0",
                        service=f"stale_after_s = {STALE_AFTER}\n{service}")


def _fresh(msgs: list[Message], n: int) -> bool:
    return sum(m.flags == Flags.OK for m in msgs) >= n


def _first(msgs: list[Message], pred) -> Message | None:  # noqa: ANN001
    return next((m for m in msgs if pred(m)), None)


@pytest.mark.parametrize(("variant", "on_reconnect"), [("same_source_id", "reset"),
                                                       ("new_source_id", "carry"),
                                                       ("no_source_id", "reset")])
def test_outage_publishes_stale_at_output_rate_then_reconnects(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, request: pytest.FixtureRequest,
        variant: str, on_reconnect: str) -> None:
    """Kill the outlet mid-stream, start a new one (same or another source_id)."""
    cfg = _cfg(tmp_path, unique_name, ipc_endpoint,
               f'on_reconnect = "{on_reconnect}"\nsafe_value = "vector"\nsafe_vector = {SAFE}')
    msgs: list[Message] = []
    statuses: list[dict] = []
    daemon = p1 = p2 = None
    with subscriber(ipc_endpoint, "dec") as sub:
        try:
            daemon = serve(cfg)
            sid = {"same_source_id": ("rig-A", "rig-A"), "new_source_id": ("rig-A", "rig-B"),
                   "no_source_id": ("", "")}[variant]
            p1 = Producer(unique_name, source_id=sid[0]).start()
            wait_status(sub, lambda s: s["state"] == "running", into=msgs)
            collect(sub, lambda: _fresh(msgs, 50), 20, msgs)
            assert _fresh(msgs, 50), "no fresh estimates before the outage"
            t_stop = p1.close()  # the rig dies
            last_ts_a = p1.t0 + (p1.i - 1) / RATE
            n_before = len(msgs)
            collect(sub, lambda: any(m.flags & Flags.STALE for m in msgs[n_before:]), 10, msgs)
            check = subprocess.Popen(PY + ["check", ipc_endpoint, "--timeout", "5"],
                                     stdout=subprocess.PIPE, text=True)
            drain(sub, 1.5, msgs, statuses)
            check_out, _ = check.communicate(timeout=30)
            p2 = Producer(unique_name, source_id=sid[1], index_base=1_000_000).start()
            n_back = len(msgs)
            collect(sub, lambda: _first(msgs[n_back:], lambda m: m.flags == Flags.OK) is not None,
                    20, msgs)
            drain(sub, 0.5, msgs)
            final = wait_status(sub, lambda s: s["state"] == "running", into=msgs)
        finally:
            for p in (p1, p2):
                if p is not None:
                    p.close()
            err = stop(daemon)
    assert daemon.returncode == 0, err
    # nothing non-finite, ever
    assert all(np.isfinite(m.values).all() for m in msgs)
    stale = [m for m in msgs[n_before:n_back] if m.flags & Flags.STALE]
    assert stale, "no STALE messages during the outage"
    first_stale = stale[0]
    # the configured safe vector, flagged STALE (not HOLD: it is not a held estimate)
    assert all(m.values.tolist() == SAFE and m.flags == Flags.STALE for m in stale)
    # heartbeat and `rtdecode check` say stale, with a reason
    assert any(s["state"] == "stale" and "no input" in s["reason"] for s in statuses)
    assert check.returncode == 1 and check_out.startswith("stale: no input"), check_out
    # STALE messages come at the model's output rate, not once per poll
    span = stale[-1].t_publish - first_stale.t_publish
    rate = (len(stale) - 1) / span
    assert 0.5 * OUT_HZ < rate < 1.5 * OUT_HZ, rate
    # no sample older than the outage was served as fresh
    after = msgs[n_back:]
    half = 0.5 / RATE  # LSL clock-offset correction jitters by µs
    assert not [m for m in msgs if not m.flags & Flags.STALE
                and last_ts_a + half < m.t_source < p2.t0 - half]
    back = _first(after, lambda m: not m.flags & Flags.STALE)
    ok = _first(after, lambda m: m.flags == Flags.OK)
    assert back is not None and ok is not None, "input came back but no fresh estimates"
    assert back.flags & Flags.GAP  # the outage is a gap in the input
    # flags clear; reset re-enters warm-up (receptive field 3 → 2 frames), carry does not
    warm = [m for m in after if m.flags & Flags.WARMUP]
    if on_reconnect == "reset":
        assert back.flags & Flags.WARMUP and len(warm) == 2
    else:
        assert not warm
    assert final["stale_episodes"] == 1 and final["input"]["index_lost"] == 0
    if variant != "same_source_id":  # liblsl recovers only an outlet with the same source_id
        assert final["input"]["reconnects"] == 1
    record(request, f"outage_{variant}", {
        "fault": f"outlet destroyed, new outlet ({variant.replace('_', ' ')}) started 1.5 s later",
        "stale_after_s": STALE_AFTER,
        "detect_s": round(first_stale.t_publish - t_stop, 4),
        "stale_rate_hz": round(rate, 2), "output_rate_hz": OUT_HZ,
        "recover_first_fresh_s": round(back.t_publish - p2.t_first_push, 4),
        "recover_flags_ok_s": round(ok.t_publish - p2.t_first_push, 4),
        "reconnects": final["input"]["reconnects"], "on_reconnect": on_reconnect,
    })


def test_backlog_after_a_frozen_producer_is_not_served_as_fresh(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, request: pytest.FixtureRequest) -> None:
    """The producer freezes 1.5 s, then pushes its backlog with the old timestamps: the daemon
    goes stale, then drops (and counts) every sample older than stale_after_s on arrival."""
    cfg = _cfg(tmp_path, unique_name, ipc_endpoint, 'safe_value = "hold"')
    msgs: list[Message] = []
    daemon = p = None
    with subscriber(ipc_endpoint, "dec") as sub:
        try:
            daemon = serve(cfg)
            p = Producer(unique_name, source_id="rig-A").start()
            wait_status(sub, lambda s: s["state"] == "running", into=msgs)
            collect(sub, lambda: _fresh(msgs, 50), 20, msgs)
            t_pause = p.pause()
            ts_pause = p.t0 + p.i / RATE  # timestamp of the first sample not pushed
            n_before = len(msgs)
            drain(sub, 1.5, msgs)
            t_resume = p.resume(backlog=True)
            collect(sub, lambda: _first(msgs[n_before:], lambda m: m.flags == Flags.OK) is not None,
                    20, msgs)
            drain(sub, 0.5, msgs)
            final = wait_status(sub, lambda s: s["state"] == "running", into=msgs)
        finally:
            if p is not None:
                p.close()
            err = stop(daemon)
    assert daemon.returncode == 0, err
    assert all(np.isfinite(m.values).all() for m in msgs)
    stale = [m for m in msgs[n_before:] if m.flags & Flags.STALE]
    assert stale and all(m.flags == Flags.STALE | Flags.HOLD for m in stale)
    held = msgs[n_before - 1].values  # hold = the last estimate before the outage
    assert all(np.array_equal(m.values, held) for m in stale)
    # the backlog arrived (no index lost) but its old part was dropped, never published fresh
    assert final["input"]["index_lost"] == 0 and final["input"]["index_dup"] == 0
    assert final["old_samples_dropped"] > 0.5 * RATE
    served_old = [m for m in msgs if not m.flags & Flags.STALE
                  and ts_pause + 0.05 < m.t_source < ts_pause + 0.9]
    assert not served_old, f"{len(served_old)} estimates from the backlog served as fresh"
    back = _first(msgs[n_before:], lambda m: not m.flags & Flags.STALE)
    assert back is not None and back.flags & Flags.GAP  # the served data skips the dropped part
    record(request, "frozen_producer_backlog", {
        "fault": "producer froze 1.5 s, then pushed its backlog with old timestamps",
        "stale_after_s": STALE_AFTER,
        "detect_s": round(stale[0].t_publish - t_pause, 4),
        "recover_first_fresh_s": round(back.t_publish - t_resume, 4),
        "old_samples_dropped": final["old_samples_dropped"],
        "last_outage": final["last_outage"],
    })


def test_stream_silent_from_the_start_gives_stale_safe_values(
        tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    """An outlet that exists but never pushes: STALE safe values (finite times), no crash."""
    cfg = _cfg(tmp_path, unique_name, ipc_endpoint, f'safe_value = "vector"\nsafe_vector = {SAFE}')
    msgs: list[Message] = []
    daemon = None
    producer = Producer(unique_name)  # outlet created, never started
    with subscriber(ipc_endpoint, "dec") as sub:
        try:
            daemon = serve(cfg)
            wait_status(sub, lambda s: s["state"] == "stale", into=msgs)
            collect(sub, lambda: sum(bool(m.flags & Flags.STALE) for m in msgs) >= 10, 20, msgs)
            assert daemon.poll() is None, "the daemon exited while stale"
        finally:
            try:
                err = stop(daemon)
            finally:
                producer.close()
    assert daemon.returncode == 0, err
    stale = [m for m in msgs if m.topic == "dec"]
    assert len(stale) >= 10 and all(m.flags == Flags.STALE for m in stale)
    assert all(m.values.tolist() == SAFE and np.isfinite(m.t_source) for m in stale)
    assert all(m.t_source <= m.t_publish for m in stale)
