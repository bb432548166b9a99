"""End to end over real parts: replay (LSL outlet) → daemon process → ZeroMQ subscriber.

Proves on a real recording that no sample is lost or duplicated (channel 0 carries
the sample index and a model output passes it through) and that what the daemon
publishes equals ``rtdecode predict`` on the same file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rtdecode.commands.predict import predict_recording
from rtdecode.io.readers import read_recording
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC
from tests.modelfactory import linear_model

ROOT = Path(__file__).resolve().parents[2]
OTB = "openhdemg_otb_hdsemg_force/otb_testfile.mat"
PY = [sys.executable, "-m", "rtdecode", "--log-level", "INFO"]


def _config(tmp_path: Path, *, name: str, model: Path, endpoint: str, channels: int, rate: float,
            extra_source: str = "", extra_service: str = "") -> Path:
    p = tmp_path / "serve.toml"
    p.write_text(
        f'[source]\nname = "{name}"\nchannels = {channels}\nrate_hz = {rate}\n'
        f"resolve_timeout_s = 30\n{extra_source}\n"
        f'[[decoders]]\nname = "dec"\nmodel = "{model}"\n\n'
        f'[sink]\nendpoint = "{endpoint}"\npublish = "every"\nsndhwm = 1000000\nheartbeat_s = 0.2\n\n'
        f"[service]\nstats_interval_s = 2\n{extra_service}\n")
    return p


def _wait_status(sub: Subscriber, state: str, timeout_s: float = 40.0) -> dict:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = sub.recv(timeout_s=0.2)
        if m is not None and m.status is not None and m.status.get("state") == state:
            return m.status
    raise AssertionError(f"no status '{state}' within {timeout_s} s")


def _collect(sub: Subscriber, daemon: subprocess.Popen, timeout_s: float) -> tuple[list, dict]:
    """Receive estimates until the daemon has exited and the socket is drained."""
    msgs, status = [], {}
    end = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < end:
        m = sub.recv(timeout_s=0.1)
        if m is None:
            if daemon.poll() is not None:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    break
            continue
        quiet_since = None
        if m.status is not None:
            status = m.status
        elif m.values is not None:
            msgs.append(m)
    return msgs, status


def serve_replay(tmp_path: Path, name: str, endpoint: str, model: Path, recording: Path, *, channels: int,
                 rate: float, start_s: float, stop_s: float, n: int,
                 index: bool = False) -> tuple[list, dict, int]:
    """Serve ``model`` in a daemon process, replay ``recording[start_s:stop_s]`` into it over LSL and
    collect what it publishes; returns (estimate messages, last status, replay exit code)."""
    cfg = _config(tmp_path, name=name, model=model, endpoint=endpoint, channels=channels, rate=rate,
                  extra_source="index_channel = 0" if index else "",
                  # parity, not timing: no LATE flag (a fact of this machine's load) in the flags
                  extra_service=f"max_samples = {n}\nlatency_budget_ms = 60000")
    with Subscriber(endpoint, topics=["dec", STATUS_TOPIC]) as sub:
        daemon = subprocess.Popen(PY + ["serve", str(cfg)], stderr=subprocess.PIPE, text=True)
        replay = None
        try:
            _wait_status(sub, "starting")
            args = ["replay", str(recording), "--name", name, "--start-s", str(start_s),
                    "--stop-s", str(stop_s), "--wait-consumer-s", "30"]
            if index:
                args += ["--index-channel", "0"]
            replay = subprocess.Popen(PY + args, stderr=subprocess.PIPE, text=True)
            msgs, status = _collect(sub, daemon, timeout_s=60 + (stop_s - start_s))
            daemon.wait(10)
            replay.wait(30)
        finally:
            for p in (daemon, replay):
                if p is not None and p.poll() is None:
                    p.kill()
        assert daemon.returncode == 0, daemon.stderr.read()
        assert replay.returncode == 0, replay.stderr.read()
    return msgs, status, replay.returncode


def _run(tmp_path: Path, shared: Path, unique_name: str, endpoint: str, model: Path,
         index: bool, start_s: float, stop_s: float) -> tuple[list, dict, int, int]:
    n = read_recording(shared / OTB).segment(start_s, stop_s).n_samples
    msgs, status, code = serve_replay(tmp_path, unique_name, endpoint, model, shared / OTB, channels=64,
                                      rate=2048.0, start_s=start_s, stop_s=stop_s, n=n, index=index)
    return msgs, status, n, code


@pytest.mark.data
def test_replay_real_recording_no_loss_and_equals_predict(tmp_path: Path, shared_data: Path,
                                                          unique_name: str, ipc_endpoint: str) -> None:
    """64 ch @ 2048 Hz HD-sEMG, 3 s: every sample exactly once, outputs == offline predict."""
    model = linear_model(tmp_path / "ident.onnx", rate_hz=2048.0, channels=64, lags=3,
                         identity_channel=0)
    msgs, status, n, _ = _run(tmp_path, shared_data, unique_name, ipc_endpoint, model,
                              index=True, start_s=10.0, stop_s=13.0)
    assert len(msgs) == n
    seq = np.array([m.seq for m in msgs])
    np.testing.assert_array_equal(seq, np.arange(n))
    y = np.vstack([m.values for m in msgs])
    # output 0 is the index channel passed through: each sample arrived once, in order
    np.testing.assert_array_equal(y[:, 0], np.arange(n, dtype=np.float32))
    assert status["input"]["index_lost"] == 0 and status["input"]["index_dup"] == 0
    assert status["input"]["samples_in"] == n
    rec = read_recording(shared_data / OTB).segment(10.0, 13.0).with_index_channel(0)
    off = predict_recording(model, rec)
    np.testing.assert_allclose(y, off["y"], rtol=1e-5, atol=1e-4)
    # every message carries an LSL source time and a publish time after it
    t_src = np.array([m.t_source for m in msgs])
    t_pub = np.array([m.t_publish for m in msgs])
    assert (np.diff(t_src) > 0).all() and (t_pub >= t_src).all()


@pytest.mark.data
def test_live_chain_equals_predict_on_real_recording(tmp_path: Path, shared_data: Path,
                                                     unique_name: str, ipc_endpoint: str) -> None:
    """The model's own chain (band-pass, RMS envelope, decimation, standardisation) live == offline."""
    chain = [{"kind": "butter", "btype": "bandpass", "order": 2, "cutoff_hz": [20.0, 450.0]},
             {"kind": "rms", "window_s": 0.05},
             {"kind": "decimate", "factor": 16},
             {"kind": "standardize", "mean": 20.0, "std": 15.0}]
    model = linear_model(tmp_path / "env.onnx", rate_hz=2048.0, channels=64, chain=chain, lags=8)
    msgs, status, n, _ = _run(tmp_path, shared_data, unique_name, ipc_endpoint, model,
                              index=False, start_s=5.0, stop_s=8.0)
    rec = read_recording(shared_data / OTB).segment(5.0, 8.0)
    off = predict_recording(model, rec)
    assert len(msgs) == off["y"].shape[0] == n // 16
    y = np.vstack([m.values for m in msgs])
    np.testing.assert_allclose(y, off["y"], rtol=1e-4, atol=1e-4)
    flags = np.array([int(m.flags) for m in msgs])
    np.testing.assert_array_equal(flags, off["flags"])
    assert status["input"]["missing_samples"] == 0


@pytest.mark.data
def test_prewake_warms_before_frames_and_live_still_equals_predict(tmp_path: Path, shared_data: Path,
                                                                   unique_name: str,
                                                                   ipc_endpoint: str) -> None:
    """service.prewake_ms (on by default): the daemon wakes before the 1 ms chunks that complete a
    frame and runs warm steps, and what it publishes is still offline predict's, row for row."""
    chain = [{"kind": "rms", "window_s": 0.02}, {"kind": "decimate", "factor": 16}]
    model = linear_model(tmp_path / "dec16.onnx", rate_hz=2048.0, channels=64, chain=chain, lags=4)
    msgs, status, n, _ = _run(tmp_path, shared_data, unique_name, ipc_endpoint, model,
                              index=False, start_s=20.0, stop_s=22.0)
    off = predict_recording(model, read_recording(shared_data / OTB).segment(20.0, 22.0))
    assert len(msgs) == off["y"].shape[0] == n // 16
    np.testing.assert_allclose(np.vstack([m.values for m in msgs]), off["y"], rtol=1e-4, atol=1e-4)
    dec = status["decoders"][0]
    assert dec["prewarm_steps"] > 0 and dec["warm_steps"] >= dec["prewarm_steps"]


def _start_sim_daemon(tmp_path: Path, name: str, endpoint: str) -> tuple[subprocess.Popen, subprocess.Popen]:
    model = ROOT / "models" / "cortex_wiener.onnx"
    cfg = _config(tmp_path, name=name, model=model, endpoint=endpoint, channels=50, rate=1000.0)
    daemon = subprocess.Popen(PY + ["serve", str(cfg)], stderr=subprocess.PIPE, text=True)
    sim = subprocess.Popen(PY + ["simulate", "cortex", "--name", name, "--seconds", "60"],
                           stderr=subprocess.DEVNULL)
    return daemon, sim


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_streaming_exits_cleanly(tmp_path: Path, unique_name: str, ipc_endpoint: str,
                                              sig: int) -> None:
    with Subscriber(ipc_endpoint, topics=["dec", STATUS_TOPIC]) as sub:
        daemon, sim = _start_sim_daemon(tmp_path, unique_name, ipc_endpoint)
        try:
            _wait_status(sub, "running")
            got = 0
            end = time.monotonic() + 20
            while got < 20 and time.monotonic() < end:
                m = sub.recv(timeout_s=0.2)
                got += m is not None and m.values is not None
            assert got >= 20, "no estimates before the signal"
            check = subprocess.run(PY + ["check", ipc_endpoint, "--timeout", "5"],
                                   capture_output=True, text=True, timeout=60)
            assert check.returncode == 0 and check.stdout.startswith("running"), check.stdout
            os.kill(daemon.pid, sig)
            assert daemon.wait(10) == 0, daemon.stderr.read()
            assert "stopped:" in daemon.stderr.read()
        finally:
            for p in (daemon, sim):
                if p.poll() is None:
                    p.kill()
                p.wait(10)


def test_sigterm_during_startup_exits_cleanly(tmp_path: Path, unique_name: str,
                                              ipc_endpoint: str) -> None:
    """No stream exists: the daemon is resolving; SIGTERM still ends it with code 0."""
    model = ROOT / "models" / "cortex_wiener.onnx"
    cfg = _config(tmp_path, name=unique_name, model=model, endpoint=ipc_endpoint, channels=50,
                  rate=1000.0)
    with Subscriber(ipc_endpoint, topics=[STATUS_TOPIC]) as sub:
        daemon = subprocess.Popen(PY + ["serve", str(cfg)], stderr=subprocess.PIPE, text=True)
        try:
            _wait_status(sub, "starting")
            time.sleep(0.5)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(10) == 0, daemon.stderr.read()
        finally:
            if daemon.poll() is None:
                daemon.kill()


def test_wrong_channel_count_is_a_clear_startup_error(tmp_path: Path, unique_name: str,
                                                      ipc_endpoint: str) -> None:
    model = ROOT / "models" / "cortex_wiener.onnx"
    cfg = _config(tmp_path, name=unique_name, model=model, endpoint=ipc_endpoint, channels=50,
                  rate=1000.0)
    sim = subprocess.Popen(PY + ["simulate", "cortex", "--name", unique_name, "--neurons", "32",
                                 "--seconds", "30"], stderr=subprocess.DEVNULL)
    try:
        r = subprocess.run(PY + ["serve", str(cfg)], capture_output=True, text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait(10)
    assert r.returncode == 3, r.stderr
    assert "32 channels" in r.stderr and "source.channels" in r.stderr


def test_corrupt_model_is_a_clear_startup_error(tmp_path: Path, unique_name: str,
                                                ipc_endpoint: str) -> None:
    bad = tmp_path / "corrupt.onnx"
    good = (ROOT / "models" / "cortex_wiener.onnx").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    cfg = _config(tmp_path, name=unique_name, model=bad, endpoint=ipc_endpoint, channels=50,
                  rate=1000.0)
    r = subprocess.run(PY + ["serve", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, r.stderr
    assert "corrupt.onnx" in r.stderr and "Fix:" in r.stderr


def test_check_fails_without_a_daemon(ipc_endpoint: str) -> None:
    r = subprocess.run(PY + ["check", ipc_endpoint, "--timeout", "1"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "no status" in r.stdout
