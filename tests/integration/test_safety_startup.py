"""Start-up safety over real LSL and ZeroMQ: the daemon opens the outlet whose layout fits its
models when several share a name, says which it rejected and why, and SIGTERM at any moment of
start-up ends it with exit 0 and a final log line."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rtdecode.lsl import pylsl
from rtdecode.sinks.protocol import Message
from tests.faultkit import PY, Producer, collect, record, serve, stop, subscriber, wait_status, write_config
from tests.modelfactory import linear_model

RATE = 500.0


def _fresh_rows(sub, n: int, timeout_s: float = 30.0) -> list[Message]:  # noqa: ANN001
    msgs: list[Message] = []
    collect(sub, lambda: len(msgs) >= n, timeout_s, msgs)
    return msgs


def test_startup_opens_the_outlet_whose_layout_fits(tmp_path: Path, unique_name: str,
                                                    ipc_endpoint: str) -> None:
    """Two outlets of one name (6 and 4 channels): the 4-channel model gets the 4-channel one,
    whichever was created first; the other is named as rejected with its reason."""
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=2, identity_channel=0)
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint)
    wrong = Producer(unique_name, channels=6, rate_hz=RATE, source_id="aaa-wrong", index_base=10**6)
    right = Producer(unique_name, channels=4, rate_hz=RATE, source_id="zzz-right")
    daemon = None
    with subscriber(ipc_endpoint, "dec") as sub:
        try:
            wrong.start()
            daemon = serve(cfg)
            right.start(wait_consumer_s=20)
            wait_status(sub, lambda s: s["state"] == "running")
            msgs = _fresh_rows(sub, 50)
        finally:
            for p in (wrong, right):
                p.close()
            err = stop(daemon)
    assert daemon is not None and daemon.returncode == 0, err
    idx = np.array([m.values[0] for m in msgs])
    assert len(idx) >= 50 and (idx < 10**6).all(), "decoded the 6-channel outlet"
    assert re.search(r"not using LSL outlet .*aaa-wrong.*has 6 channels, model m\.onnx expects 4", err), err


def test_several_fitting_outlets_warn_and_choose_deterministically(
        tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    """Two fitting outlets: a warning names both (source_id and host) and the lowest source_id
    wins, whichever started first; an explicit source.source_id chooses the other."""
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=2, identity_channel=0)
    b = Producer(unique_name, channels=4, rate_hz=RATE, source_id="rig-b", index_base=10**6)
    a = Producer(unique_name, channels=4, rate_hz=RATE, source_id="rig-a")
    runs = {}
    try:
        b.start()
        a.start()
        for label, source in (("default", ""), ("explicit", 'source_id = "rig-b"')):
            cfg = write_config(tmp_path / f"{label}.toml", name=unique_name, model=model,
                               endpoint=ipc_endpoint, source=source)
            with subscriber(ipc_endpoint, "dec") as sub:
                daemon = serve(cfg)
                try:
                    wait_status(sub, lambda s: s["state"] == "running")
                    msgs = _fresh_rows(sub, 20)
                finally:
                    err = stop(daemon)
            assert daemon.returncode == 0, err
            runs[label] = (np.array([m.values[0] for m in msgs]), err)
    finally:
        a.close()
        b.close()
    idx, err = runs["default"]
    assert len(idx) >= 20 and (idx < 10**6).all(), "the default choice must be rig-a (lowest source_id)"
    assert "2 LSL outlets match" in err and "rig-a" in err and "rig-b" in err and "host" in err, err
    idx, err = runs["explicit"]
    assert len(idx) >= 20 and (idx >= 10**6).all(), "source.source_id must win"


DELAYS_S = (0.0, 0.1, 0.3, 0.6, 1.0, 1.5, 2.0)


def _catches_sigterm(pid: int) -> bool:
    """True once the process has a SIGTERM handler (Linux /proc: the SigCgt mask)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to see the handler")
def test_sigterm_at_any_moment_of_startup_exits_0_with_a_final_line(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, request: pytest.FixtureRequest) -> None:
    """SIGTERM 0–2 s into start-up (imports, config, model load, warm-up, resolving).

    A delay counts from the moment rtdecode's entry point runs its first line (it installs the
    handlers first thing): before that the interpreter itself is starting (~30–150 ms) and no
    Python program can handle a signal yet.
    """
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=2)
    cfg = write_config(tmp_path / "serve.toml", name=unique_name + "-absent", model=model,
                       endpoint=ipc_endpoint, warmup_runs=200)
    took, entry = {}, {}
    for delay in DELAYS_S:
        t_launch = time.monotonic()
        proc = subprocess.Popen(PY + ["serve", str(cfg)], stderr=subprocess.PIPE, text=True)
        while not _catches_sigterm(proc.pid) and proc.poll() is None and time.monotonic() - t_launch < 30:
            time.sleep(0.001)
        entry[f"{delay:g}"] = round(time.monotonic() - t_launch, 3)
        time.sleep(delay)
        t_sig = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        took[f"{delay:g}"] = round(time.monotonic() - t_sig, 3)
        assert proc.returncode == 0, f"SIGTERM {delay} s after launch: exit {proc.returncode}\n{err}"
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert re.search(r"stopped|stopping", last), f"no final log line after SIGTERM at {delay} s: {err}"
    record(request, "sigterm_during_startup", {"signal_to_exit_s": took, "launch_to_handler_s": entry})


def test_the_right_outlet_is_found_with_a_live_lsl_query(unique_name: str) -> None:
    """The choice reads real StreamInfos: source_id, host and layout come from liblsl."""
    from rtdecode.sources.stream_choice import Layout, choose, describe

    outs = [pylsl.StreamOutlet(pylsl.StreamInfo(unique_name, "EMG", c, RATE, "float32", sid))
            for c, sid in ((8, "s1"), (4, "s2"), (4, "s0"))]
    found: list = []
    end = time.monotonic() + 10
    while len(found) < 3 and time.monotonic() < end:
        found = pylsl.resolve_byprop("name", unique_name, 3, 1.0)
    chosen, rejected = choose(found, [Layout(None, None, "the config"), Layout(4, RATE, "model m")], 0.01)
    assert chosen is not None and chosen.source_id() == "s0"
    assert [i.source_id() for i, _ in rejected] == ["s1"]
    assert "host" in describe(chosen)
    del outs
