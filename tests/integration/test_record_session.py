"""Session recording over real parts: daemon process with ``[record]`` → HDF5 file → the file
holds what was published, ``rtdecode predict`` on it reproduces it bit for bit, and
``rtdecode replay`` of it into a second daemon gives the same estimates again.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rtdecode.record.reader import read_session
from rtdecode.sinks.protocol import Message
from tests.faultkit import PY, Producer, serve, stop, subscriber, wait_status, write_config
from tests.modelfactory import linear_model

pytest.importorskip("h5py")

RATE = 500.0
N = 1500  # 3 s of input


def _model(tmp_path: Path) -> Path:
    # a decimating chain: outputs depend on how samples were chunked into frames
    return linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3,
                        chain=[{"kind": "butter", "btype": "lowpass", "order": 2, "cutoff_hz": 40.0},
                               {"kind": "bin", "factor": 5, "reduce": "mean"}])


def _run_daemon(cfg: Path, endpoint: str, start_input) -> tuple[list[Message], dict]:  # noqa: ANN001
    """Serve until max_samples; returns the estimates received and the last status."""
    msgs: list[Message] = []
    status: dict = {}
    with subscriber(endpoint, "dec") as sub:
        daemon = serve(cfg)
        feeder = None
        try:
            wait_status(sub, lambda s: s["state"] == "starting")
            feeder = start_input()
            end = time.monotonic() + 90
            quiet = None
            while time.monotonic() < end:
                m = sub.recv(timeout_s=0.1)
                if m is None:
                    if daemon.poll() is not None:
                        quiet = quiet or time.monotonic()
                        if time.monotonic() - quiet > 0.5:
                            break
                    continue
                quiet = None
                if m.status is not None:
                    status = m.status
                else:
                    msgs.append(m)
            err = stop(daemon)
            assert daemon.returncode == 0, err
        finally:
            stop(daemon)
            if isinstance(feeder, Producer):
                feeder.close()
            elif feeder is not None:
                stop(feeder)
    return msgs, status


def test_record_then_predict_and_replay_reproduce_what_was_published(
        tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    model = _model(tmp_path)
    rec_dir = tmp_path / "sessions"
    cfg = write_config(tmp_path / "a.toml", name=unique_name, model=model, endpoint=ipc_endpoint,
                       source=f"channels = 4\nrate_hz = {RATE}\nindex_channel = 0",
                       service=f'max_samples = {N}\non_behind = "none"',  # serve every sample, even late
                       extra=f'[record]\ndir = "{rec_dir}"\nflush_interval_s = 0.2\n')
    msgs, status = _run_daemon(cfg, ipc_endpoint,
                               lambda: Producer(unique_name, chunk=3).start(wait_consumer_s=30))
    assert status["record"]["dropped"] == {"chunks": 0, "samples": 0, "frames": 0}
    files = sorted(rec_dir.glob("*.h5"))
    assert len(files) == 1
    s = read_session(files[0])
    # every input sample served, once, in order (channel 0 is the producer's index)
    np.testing.assert_array_equal(s.samples[:, 0], np.arange(N, dtype=np.float32))
    assert s.chunks["n"].sum() == N and s.complete
    assert s.stream["n_channels"] == 4 and s.stream["rate_hz"] == RATE
    assert s.config["decoders"][0]["name"] == "dec" and "dec" in s.models
    assert s.models["dec"]["metadata_json"]["outputs"][0]["name"] == "y0"
    # the file holds exactly what the subscriber received
    est = s.estimates("dec")
    assert len(msgs) == est["seq"].size > 250
    np.testing.assert_array_equal(est["seq"], [m.seq for m in msgs])
    np.testing.assert_array_equal(est["values"], np.vstack([m.values for m in msgs]))
    np.testing.assert_array_equal(est["flags"], [int(m.flags) for m in msgs])
    np.testing.assert_array_equal(est["t_source"], [m.t_source for m in msgs])
    statuses = s.statuses()
    assert statuses[0]["state"] == "running" and statuses[-1]["state"] == "stopping"
    # rtdecode predict on the session: the same estimates, bit for bit
    out = tmp_path / "pred.npz"
    r = subprocess.run(PY + ["predict", str(files[0]), "--out", str(out), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"dec: {est['seq'].size}/{est['seq'].size} equal" in r.stdout
    pred = np.load(out)
    np.testing.assert_array_equal(pred["dec_y"], est["values"])
    # rtdecode replay SESSION.h5 into a second daemon: the same input, the same estimates
    name2 = unique_name + "-replay"
    ep2 = ipc_endpoint.replace("pub.sock", "pub2.sock")
    cfg2 = write_config(tmp_path / "b.toml", name=name2, model=model, endpoint=ep2,
                        source=f"channels = 4\nrate_hz = {RATE}\nindex_channel = 0",
                        service=f'max_samples = {N}\non_behind = "none"')
    msgs2, status2 = _run_daemon(cfg2, ep2, lambda: subprocess.Popen(
        PY + ["replay", str(files[0]), "--name", name2, "--wait-consumer-s", "30"],
        stderr=subprocess.PIPE, text=True))
    assert status2["input"]["index_lost"] == 0 and status2["input"]["samples_in"] == N
    np.testing.assert_allclose(np.vstack([m.values for m in msgs2]), est["values"], rtol=1e-5, atol=1e-5)
