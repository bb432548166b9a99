"""``rtdecode doctor``: real ONNX Runtime sessions, a real LSL outlet, real ZeroMQ sockets on loopback.

Verdicts are driven by budgets far from any real timing (1e4 ms passes, 1e-9 ms fails), so
no test depends on how fast this machine is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtdecode.cli import main
from rtdecode.lsl import pylsl
from rtdecode.runtime.providers import available_providers
from rtdecode.sinks.zmq_pub import Publisher

ROOT = Path(__file__).resolve().parents[2]
WIENER = ROOT / "models" / "cortex_wiener.onnx"
FAST = ["--steps", "40", "--messages", "40", "--lsl-timeout", "0.5"]


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main(["doctor", "--json", *FAST, *args])
    return rc, json.loads(capsys.readouterr().out)


def _config(tmp_path: Path, stream: str, endpoint: str, decoder_extra: str = "") -> Path:
    p = tmp_path / "doctor.toml"
    p.write_text(f"""
[source]
name = "{stream}"
channels = 50
rate_hz = 1000.0

[[decoders]]
name = "wiener"
model = "{WIENER}"
{decoder_extra}

[sink]
endpoint = "{endpoint}"
""", encoding="utf-8")
    return p


def test_doctor_without_config_reports_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    rc, r = _doctor(capsys, "--budget-ms", "10000", "--model", str(WIENER))
    assert rc == 0 and r["verdict"] == "PASS"
    assert "cpu" in r["onnxruntime"]["available"]
    assert r["gpu"]["nvidia_smi"] == "none" or isinstance(r["gpu"]["nvidia_smi"], list)
    assert {"dir", "exists", "files", "total_bytes", "writable"} <= set(r["tensorrt_cache"][0])
    (dec,) = r["decoders"]
    assert dec["provider"] == "cpu" and dec["latency"]["steps"] == 40
    assert 0 < dec["latency"]["p50_ms"] <= dec["latency"]["p99_ms"]
    assert dec["latency"]["warmup_runs"] >= 20
    assert r["lsl"]["library_version"] >= 100
    lb = r["zmq"]["loopback"]
    assert lb["received"] == lb["messages"] == 40 and lb["ok"]
    assert isinstance(r["zmq"]["curve"], bool)


def test_impossible_budget_fails(capsys: pytest.CaptureFixture[str]) -> None:
    rc, r = _doctor(capsys, "--budget-ms", "1e-9", "--model", str(WIENER))
    assert rc == 1 and r["verdict"] == "FAIL"
    failed = {c["name"] for c in r["checks"] if not c["ok"] and c["level"] == "fail"}
    assert any(n.startswith("decoder cortex_wiener: step p99") for n in failed)
    assert any(n.startswith("ZeroMQ loopback p99") for n in failed)


def test_config_stream_clock_offset_and_endpoint(tmp_path: Path, unique_name: str, ipc_endpoint: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    info = pylsl.StreamInfo(unique_name, "EEG", 50, 1000.0, pylsl.cf_float32, unique_name)
    outlet = pylsl.StreamOutlet(info)
    try:
        rc, r = _doctor(capsys, str(_config(tmp_path, unique_name, ipc_endpoint)), "--budget-ms", "10000")
    finally:
        del outlet
    assert rc == 0, [c for c in r["checks"] if not c["ok"]]
    conf = r["lsl"]["configured_stream"]
    assert conf["found"] and abs(conf["clock_offset_ms"]) < 1000.0
    assert unique_name in [s["name"] for s in r["lsl"]["streams"]]
    assert r["zmq"]["endpoint"] == ipc_endpoint and r["zmq"]["bindable"] is True
    assert r["decoders"][0]["name"] == "wiener" and r["decoders"][0]["requested"] == ["cpu"]


def test_missing_stream_is_a_warning_and_busy_endpoint_a_failure(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, unique_name, ipc_endpoint)
    with Publisher(ipc_endpoint):  # the "running daemon" holds the endpoint
        rc, r = _doctor(capsys, str(cfg), "--budget-ms", "10000")
    assert rc == 1
    checks = {c["name"]: c for c in r["checks"]}
    assert checks["configured stream visible"]["ok"] is False
    assert checks["configured stream visible"]["level"] == "warn"
    assert checks["sink endpoint bindable"]["ok"] is False
    assert checks["sink endpoint bindable"]["level"] == "fail"


@pytest.mark.skipif("cuda" in available_providers(), reason="needs a machine without the CUDA provider")
def test_unavailable_provider_fails_unless_fallback_allowed(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    strict = _config(tmp_path, unique_name, ipc_endpoint, 'providers = ["cuda", "cpu"]')
    rc, r = _doctor(capsys, str(strict), "--budget-ms", "10000", "--lsl-timeout", "0")
    assert rc == 1
    assert "required" in r["decoders"][0]["error"] and "onnxruntime-gpu" in r["decoders"][0]["error"]
    lenient = _config(tmp_path, unique_name, ipc_endpoint,
                      'providers = ["cuda", "cpu"]\nrequire_provider = false')
    rc, r = _doctor(capsys, str(lenient), "--budget-ms", "10000", "--lsl-timeout", "0")
    assert rc == 0 and r["decoders"][0]["provider"] == "cpu"
    warn = {c["name"]: c for c in r["checks"]}["decoder wiener: provider"]
    assert warn["level"] == "warn" and "fallback" in warn["detail"]


def test_invalid_config_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[source]\nname = "x"\nchannels = "fifty"\n[[decoders]]\nname = "d"\n'
                   f'model = "{WIENER}"\n', encoding="utf-8")
    assert main(["doctor", str(bad)]) == 2
    assert "source.channels" in capsys.readouterr().err


def test_missing_model_is_a_model_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README's exit-code table: a missing model is 4 (it was 2 before issue 12)."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[source]\nname = "x"\n[[decoders]]\nname = "d"\nmodel = "nope.onnx"\n', encoding="utf-8")
    assert main(["doctor", str(bad)]) == 4
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("config", sorted((ROOT / "deploy" / "configs").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_passes_doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the image's check.sh runs on each config, here (a plug-in-only [tms] config has no decoders)."""
    rc, r = _doctor(capsys, "--budget-ms", "10000", str(config))
    failed = [c for c in r["checks"] if not c["ok"] and c["level"] == "fail"]
    # the config's port may be held by a demo running beside the tests: that check alone may fail
    assert all(c["name"] == "sink endpoint bindable" for c in failed), failed
    assert rc == (1 if failed else 0)
    names = [c["name"] for c in r["checks"]]
    assert "decoders fit the configured stream" in names or "decoders" in names
