"""``rtdecode providers``, ``rtdecode trt-build`` and doctor's engine line, on this (CPU) machine.

Here the onnxruntime build is the CPU one, as a plain ``pip install`` leaves it on a Jetson: the
commands must stop with exit 4 and name the fix. Building real engines: tests/gpu (skipped here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtdecode.cli import main
from rtdecode.runtime.engine_cache import probe_platform
from rtdecode.runtime.providers import available_providers

ROOT = Path(__file__).resolve().parents[2]
GESTURE = ROOT / "deploy" / "configs" / "hdsemg-gesture.toml"


def _cpu_only() -> None:
    if "tensorrt" in available_providers() or "cuda" in available_providers():
        pytest.skip(f"this onnxruntime has GPU providers ({available_providers()}); tests/gpu covers it")


def test_providers_reports_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "cpu" in r["available"] and r["onnxruntime"]
    assert set(r["distributions"]) <= {"onnxruntime", "onnxruntime-gpu"} and r["distributions"]
    assert main(["providers", "--require", "cpu"]) == 0
    assert "required providers present: cpu" in capsys.readouterr().out


def test_providers_require_gpu_on_a_cpu_build_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    _cpu_only()
    assert main(["providers", "--require", "tensorrt,cuda"]) == 4
    err = capsys.readouterr().err
    assert "tensorrt, cuda missing" in err and "Fix:" in err
    assert "CPU-only onnxruntime" in err and "deploy/jetson/install-ort.sh" in err
    assert main(["providers", "--require", "tensorrt,gpu"]) == 4
    assert "unknown execution provider(s) ['gpu']" in capsys.readouterr().err


def test_trt_build_without_tensorrt_stops_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    _cpu_only()
    assert main(["trt-build", str(GESTURE)]) == 4
    err = capsys.readouterr().err
    assert "tensorrt missing" in err and "deploy/jetson/install-ort.sh" in err
    assert main(["trt-build", str(ROOT / "models" / "cortex_wiener.onnx")]) == 4


def test_trt_build_of_a_config_without_tensorrt_decoders_is_a_config_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trt-build", str(ROOT / "deploy" / "configs" / "cortex-sim.toml")]) == 2
    assert 'no decoder lists "tensorrt"' in capsys.readouterr().err


def test_doctor_reports_each_tensorrt_decoders_engine_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RTDECODE_TRT_CACHE", str(tmp_path / "trt"))
    main(["doctor", str(GESTURE), "--json", "--lsl-timeout", "0", "--steps", "20", "--messages", "20"])
    r = json.loads(capsys.readouterr().out)
    (e,) = r["tensorrt_engines"]
    assert e["decoder"] == "gesture" and e["root"] == str(tmp_path / "trt")
    if probe_platform() is None:
        assert e["state"] == "unavailable" and e["engine_dir"] is None and "cache is off" in e["detail"]
    else:
        assert e["state"] in ("miss", "hit", "stale") and e["key"]["model"] == "flexemg_mlp"
