"""The iBCI front end end to end, over real parts: a model fitted on the fly on simulated
broadband data (32 channels at 30 kHz), its file read back by `rtdecode predict`, thresholds
recalibrated by `rtdecode thresholds`, and `rtdecode simulate broadband` (LSL) → `rtdecode serve`
→ ZeroMQ subscriber equal to `rtdecode predict` on the same samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtdecode.cli import build_parser
from rtdecode.commands.predict import predict_recording
from rtdecode.commands.thresholds import recalibrate_thresholds
from rtdecode.dsp import build_chain
from rtdecode.errors import DataError
from rtdecode.ibci.fit import IbciFit, fit_decoder, front_end_frames, write_ibci_model
from rtdecode.ibci.frontend import recording_blocks
from rtdecode.ibci.thresholds import noise_rms
from rtdecode.io.writers import write_npz
from rtdecode.runtime.streaming import read_metadata
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC
from rtdecode.sources.broadband import BroadbandSimulator, simulate_broadband_recording, simulator_blocks
from tests.integration.test_daemon_e2e import _collect

PY = [sys.executable, "-m", "rtdecode", "--log-level", "INFO"]
CH, FS, SUBJECT = 32, 30000.0, 7


def _session(seed: int, seconds: float):  # noqa: ANN202
    sim = BroadbandSimulator(CH, FS, seed, subject_seed=SUBJECT)
    return ((x, y[:, 2:4]) for x, y in simulator_blocks(sim, seconds))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[IbciFit, Path]:
    """A Kalman decoder behind the front end, 10 s of session 5 (thresholds from its first 3 s)."""
    frames = front_end_frames(_session(5, 10.0), lambda: (x for x, _ in _session(5, 3.0)), FS, CH)
    fit = fit_decoder(frames, "kalman")
    path = write_ibci_model(fit, tmp_path_factory.mktemp("ibci") / "ibci_kf.onnx", output_names=["vx", "vy"],
                            output_units=["cm/s", "cm/s"], provenance={"data": "test"})
    return fit, path


def test_model_file_carries_the_chain_and_predict_equals_the_fit(fitted: tuple[IbciFit, Path]) -> None:
    fit, path = fitted
    meta = read_metadata(path)
    assert [s["kind"] for s in meta.preprocessing] == ["car", "butter", "crossings_sbp", "standardize"]
    assert meta.model_rate_hz == 50.0 and meta.model_channels == 2 * CH and meta.bounds is not None
    assert len(meta.preprocessing[2]["noise_rms"]) == CH
    rec = simulate_broadband_recording(2.0, n_channels=CH, seed=6, subject_seed=SUBJECT)
    off = predict_recording(path, rec)
    z, _ = build_chain(fit.specs, FS, CH).process(rec.x, rec.t)
    assert off["y"].shape == (100, 2)
    np.testing.assert_allclose(off["y"], fit.decoder.predict(z), rtol=1e-4, atol=1e-4)
    # it decodes held-out data of the same subject (a tiny model: 10 s of training)
    assert fit.r2(_session(6, 5.0)).mean() > 0.3


def test_thresholds_command_recalibrates_on_a_new_session(fitted: tuple[IbciFit, Path],
                                                          tmp_path: Path) -> None:
    _, path = fitted
    rec = simulate_broadband_recording(2.0, n_channels=CH, seed=8, subject_seed=SUBJECT, noise_uv=14.0)
    write_npz(rec, tmp_path / "cal.npz")
    out = tmp_path / "recal.onnx"
    run = subprocess.run(PY + ["thresholds", str(path), str(tmp_path / "cal.npz"), "--out", str(out),
                               "--threshold", "-4"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "median RMS" in run.stdout
    before, after = read_metadata(path), read_metadata(out)
    expected = noise_rms((x for x, _ in recording_blocks(rec)), before.preprocessing[:2], FS, CH)
    np.testing.assert_allclose(after.preprocessing[2]["noise_rms"], expected, rtol=1e-9)
    assert np.median(expected) > np.median(before.preprocessing[2]["noise_rms"])  # noisier session
    assert after.preprocessing[2]["threshold"] == -4.0
    assert after.preprocessing[3] == before.preprocessing[3]  # the decoder's part is untouched
    assert after.provenance["thresholds"]["recording"] == "cal.npz"
    # the wrong rig: a clear error (DataError: exit code 6), no file
    write_npz(simulate_broadband_recording(0.5, n_channels=CH - 1, seed=8), tmp_path / "other.npz")
    args = build_parser().parse_args(["thresholds", str(path), str(tmp_path / "other.npz"), "--out",
                                      str(tmp_path / "bad.onnx")])
    with pytest.raises(DataError, match="31 channels") as info:
        recalibrate_thresholds(args)
    assert info.value.exit_code == 6 and not (tmp_path / "bad.onnx").exists()


def test_live_front_end_equals_predict(fitted: tuple[IbciFit, Path], tmp_path: Path, unique_name: str,
                                       ipc_endpoint: str) -> None:
    """32 ch @ 30 kHz in 1 ms chunks for 3 s: every sample in, one estimate per 20 ms bin, equal
    to the offline computation on the same samples (the simulator's output for a seed)."""
    _, path = fitted
    seconds, seed = 3.0, 9
    n = int(seconds * FS)
    cfg = tmp_path / "serve.toml"
    cfg.write_text(
        f'[source]\nname = "{unique_name}"\nchannels = {CH}\nrate_hz = {FS}\nresolve_timeout_s = 30\n\n'
        f'[[decoders]]\nname = "dec"\nmodel = "{path}"\n\n'
        f'[sink]\nendpoint = "{ipc_endpoint}"\npublish = "every"\nsndhwm = 100000\nheartbeat_s = 0.2\n\n'
        # parity, not timing: no LATE flag (a fact of this machine's load) in the flags
        f"[service]\nmax_samples = {n}\nlatency_budget_ms = 60000\n")
    with Subscriber(ipc_endpoint, topics=["dec", STATUS_TOPIC]) as sub:
        daemon = subprocess.Popen(PY + ["serve", str(cfg)], stderr=subprocess.PIPE, text=True)
        sim_args = ["simulate", "broadband", "--channels", str(CH), "--seconds", str(seconds), "--seed",
                    str(seed), "--subject", str(SUBJECT), "--name", unique_name, "--wait-consumer-s", "30"]
        sim = subprocess.Popen(PY + sim_args, stderr=subprocess.PIPE, text=True)
        try:
            msgs, status = _collect(sub, daemon, timeout_s=90)
            daemon.wait(10)
            sim.wait(30)
        finally:
            for p in (daemon, sim):
                if p.poll() is None:
                    p.kill()
    assert daemon.returncode == 0, daemon.stderr.read()
    assert sim.returncode == 0, sim.stderr.read()
    assert status["input"]["samples_in"] == n and status["input"]["missing_samples"] == 0
    rec = simulate_broadband_recording(seconds, n_channels=CH, seed=seed, subject_seed=SUBJECT)
    off = predict_recording(path, rec)
    assert len(msgs) == off["y"].shape[0] == n // 600
    np.testing.assert_array_equal([m.seq for m in msgs], np.arange(len(msgs)))
    np.testing.assert_allclose(np.vstack([m.values for m in msgs]), off["y"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal([int(m.flags) for m in msgs], off["flags"])
