"""The daemon with three decoders and Kalman fusion, end to end over real LSL and ZeroMQ."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC
from rtdecode.types import Flags
from tests.modelfactory import linear_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
PY = [sys.executable, "-m", "rtdecode", "--log-level", "INFO"]


def _config(tmp_path: Path, name: str, endpoint: str, kf_model: Path) -> Path:
    p = tmp_path / "fusion.toml"
    p.write_text(
        f'[source]\nname = "{name}"\nchannels = 50\nrate_hz = 1000.0\nresolve_timeout_s = 30\n\n'
        f'[[decoders]]\nname = "kf"\nmodel = "{kf_model}"\n\n'
        f'[[decoders]]\nname = "wiener"\nmodel = "{MODELS / "cortex_wiener.onnx"}"\n\n'
        f'[[decoders]]\nname = "pv"\nmodel = "{MODELS / "cortex_pv.onnx"}"\n\n'
        f'[fusion]\nmodel = "{MODELS / "cortex_fusion.json"}"\ndecoders = ["kf", "wiener", "pv"]\n'
        f'topic = "fused"\nrate_hz = 50.0\n\n'
        f'[sink]\nendpoint = "{endpoint}"\nheartbeat_s = 0.2\n\n'
        # fusion, not timing: no LATE flag (a fact of this machine's load) in the flags checked
        '[service]\nlatency_budget_ms = 60000\n')
    return p


def _run(tmp_path: Path, name: str, endpoint: str, kf_model: Path, seconds: float) -> tuple[dict, dict]:
    cfg = _config(tmp_path, name, endpoint, kf_model)
    msgs: dict[str, list] = {"kf": [], "wiener": [], "pv": [], "fused": []}
    status: dict = {}
    with Subscriber(endpoint) as sub:
        daemon = subprocess.Popen(PY + ["serve", str(cfg), "--duration", str(seconds + 5)],
                                  stderr=subprocess.PIPE, text=True)
        sim = subprocess.Popen(PY + ["simulate", "cortex", "--name", name, "--seed", "21",
                                     "--seconds", str(seconds), "--wait-consumer-s", "30"],
                               stderr=subprocess.DEVNULL)
        try:
            end = time.monotonic() + seconds + 40
            while time.monotonic() < end and sim.poll() is None:
                m = sub.recv(timeout_s=0.2)
                if m is None:
                    continue
                if m.topic == STATUS_TOPIC:
                    status = m.status or status
                else:
                    msgs[m.topic].append(m)
            daemon.terminate()
            assert daemon.wait(15) == 0, daemon.stderr.read()
        finally:
            for p in (daemon, sim):
                if p.poll() is None:
                    p.kill()
    return msgs, status


def test_three_decoders_and_fusion(tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    msgs, status = _run(tmp_path, unique_name, ipc_endpoint, MODELS / "cortex_kf.onnx", 6.0)
    for topic in ("kf", "wiener", "pv"):
        assert len(msgs[topic]) > 200, topic  # 50 Hz each
    fused = [m for m in msgs["fused"] if not m.flags & Flags.STALE]
    assert len(fused) > 200
    y = np.vstack([m.values for m in fused])
    assert np.isfinite(y).all()
    late = [m for m in fused[100:]]
    assert all(m.flags == Flags.OK for m in late), {int(m.flags) for m in late}
    # the fused velocity follows the decoders it fuses (latest wiener output at each fused time)
    wt = np.array([m.t_source for m in msgs["wiener"]])
    wy = np.vstack([m.values for m in msgs["wiener"]])
    ft = np.array([m.t_source for m in fused[50:]])
    k = np.searchsorted(wt, ft, side="right") - 1
    ok = k >= 0
    assert ok.sum() > 100
    assert np.corrcoef(y[50:][ok, 0], wy[k[ok], 0])[0, 1] > 0.8
    dec = status["fusion"]["decoders"]
    assert [d["name"] for d in dec] == ["kf", "wiener", "pv"]
    assert all(d["fused"] > 100 and d["nonfinite"] == 0 for d in dec)


def test_failing_decoder_is_excluded_and_flagged(tmp_path: Path, unique_name: str,
                                                  ipc_endpoint: str) -> None:
    """A 'kf' whose outputs overflow to inf: its messages are held + flagged, the fusion
    excludes it, and the fused output stays finite and is flagged DEGRADED."""
    broken = linear_model(tmp_path / "broken_kf.onnx", rate_hz=1000.0, channels=50, lags=1,
                          chain=[{"kind": "bin", "factor": 20, "reduce": "sum"}], weight_scale=float("inf"))
    msgs, status = _run(tmp_path, unique_name, ipc_endpoint, broken, 4.0)
    kf = msgs["kf"]
    assert kf and all(np.isfinite(m.values).all() for m in kf)
    assert sum(bool(m.flags & Flags.CLAMPED) for m in kf) > len(kf) // 2
    fused = [m for m in msgs["fused"] if not m.flags & Flags.STALE]
    assert len(fused) > 100
    assert all(np.isfinite(m.values).all() for m in fused)
    assert all(m.flags & Flags.DEGRADED for m in fused[50:])
    kf_status = status["fusion"]["decoders"][0]
    assert kf_status["name"] == "kf" and kf_status["fused"] == 0
