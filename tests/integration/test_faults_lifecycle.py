"""Lifecycle: SIGTERM / SIGINT in every phase ends ``rtdecode serve`` cleanly (exit 0), a second
SIGINT forces exit (130), and ``rtdecode check`` reports starting / gone as unhealthy.

The time from the signal to the process exit is measured and reported (contract: < 2 s),
not asserted; each wait has a generous timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtdecode.sinks.protocol import Message
from tests.faultkit import (
    PY,
    Producer,
    collect,
    record,
    serve,
    stop,
    subscriber,
    wait_status,
    write_config,
)
from tests.modelfactory import linear_model

RATE = 500.0


@pytest.mark.parametrize(("phase", "sig"), [("warm-up", signal.SIGINT),
                                            ("resolving", signal.SIGTERM),
                                            ("streaming", signal.SIGTERM),
                                            ("stale", signal.SIGINT)])
def test_signal_in_any_phase_exits_cleanly(tmp_path: Path, unique_name: str, ipc_endpoint: str,
                                           request: pytest.FixtureRequest, phase: str,
                                           sig: signal.Signals) -> None:
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3)
    # warm-up: a huge warmup_runs keeps the daemon warming up for its 5 s limit
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint,
                       source="channels = 4", warmup_runs=1_000_000 if phase == "warm-up" else 2)
    msgs: list[Message] = []
    daemon = producer = None
    check_out = ""
    with subscriber(ipc_endpoint, "dec") as sub:
        try:
            daemon = serve(cfg)
            if phase == "warm-up":
                wait_status(sub, lambda s: s.get("phase") == "warming up")
                r = subprocess.run(PY + ["check", ipc_endpoint, "--timeout", "3"], capture_output=True,
                                   text=True, timeout=30)
                # unhealthy while starting (warm-up may be over by the time check has started)
                assert r.returncode == 1 and r.stdout.startswith("starting: "), r.stdout
                check_out = r.stdout.strip()
            elif phase == "resolving":
                wait_status(sub, lambda s: s.get("phase") == "resolving the input stream")
                time.sleep(0.3)
            else:
                producer = Producer(unique_name, rate_hz=RATE).start()
                collect(sub, lambda: len(msgs) > 100, 30, msgs)
                assert len(msgs) > 100
                if phase == "stale":
                    producer.pause()
                    wait_status(sub, lambda s: s["state"] == "stale")
            assert daemon.poll() is None, "the daemon ended before the signal"
            t_sig = time.monotonic()
            os.kill(daemon.pid, sig)
            rc = daemon.wait(10)
            took = time.monotonic() - t_sig
        finally:
            if producer is not None:
                producer.close()
            err = stop(daemon)
    assert rc == 0, err
    assert "stopped" in err
    record(request, f"signal_{phase}", {"fault": f"{signal.Signals(sig).name} during {phase}",
                                        "exit_code": rc, "signal_to_exit_s": round(took, 3),
                                        "check_during_warm_up": check_out or None})


HANG = """
import sys, time
from rtdecode.config import load_config
from rtdecode.service.daemon import Daemon
d = Daemon(load_config(sys.argv[1]))
d._install_signals()
print("ready", flush=True)
while True:  # a shutdown that hangs: the first SIGINT only sets the stop flag
    time.sleep(0.01)
"""


def test_second_sigint_forces_exit(tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    """The real signal handler of the daemon, in a process whose shutdown hangs."""
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3)
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint)
    proc = subprocess.Popen([sys.executable, "-c", HANG, str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None, "the first SIGINT must only request a clean stop"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        assert "second interrupt, forcing exit" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_check_reports_a_gone_daemon(tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    """Running → check 0; after the daemon exits → check 1 with a one-line reason."""
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3)
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint,
                       source="channels = 4")
    producer = Producer(unique_name, rate_hz=RATE).start()
    daemon = serve(cfg)
    try:
        with subscriber(ipc_endpoint, "dec") as sub:
            wait_status(sub, lambda s: s["state"] == "running")
        ok = subprocess.run(PY + ["check", ipc_endpoint, "--timeout", "5"], capture_output=True,
                            text=True, timeout=30)
        assert ok.returncode == 0 and ok.stdout.startswith("running: decoding |"), ok.stdout
        daemon.terminate()
        assert daemon.wait(10) == 0
        gone = subprocess.run(PY + ["check", ipc_endpoint, "--timeout", "1"], capture_output=True,
                              text=True, timeout=30)
        assert gone.returncode == 1 and len(gone.stdout.strip().splitlines()) == 1
        assert gone.stdout.startswith("no status from"), gone.stdout
    finally:
        producer.close()
        stop(daemon)
