"""The deployment recipe is consistent: what the Dockerfiles COPY / RUN exists, scripts parse,
the systemd unit has its restart policy, every example config validates and fits its models.

Docker itself cannot run here; deploy/docker/ci.sh (run by .ci/run) executes the image's
install and check scripts in a throwaway virtual environment.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from rtdecode.config import load_config
from rtdecode.runtime.streaming import read_metadata

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "deploy" / "jetson" / "Dockerfile.jetson"]
CONFIGS = sorted((ROOT / "deploy" / "configs").glob("*.toml"))
SCRIPTS = sorted((ROOT / "deploy").rglob("*.sh"))


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_and_runs_only_what_exists(dockerfile: Path) -> None:
    ins = _instructions(dockerfile)
    copied: dict[str, str] = {}  # absolute path in the image → source in the repo
    workdir = "/"

    def absolute(p: str) -> str:
        return p if p.startswith("/") else f"{workdir.rstrip('/')}/{p[2:] if p.startswith('./') else p}"

    for word, args in ins:
        if word == "WORKDIR":
            workdir = args
        elif word == "COPY":
            *srcs, dest = shlex.split(args)
            for src in srcs:
                assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src} does not exist"
                target = absolute(dest)
                copied[target.rstrip("/") + "/" + Path(src).name if dest.endswith("/") else target] = src
        elif word == "RUN":
            for token in re.findall(r"(?:\./|/)[\w./-]+\.sh\b", args):
                path = absolute(token)
                src = copied.get(path) or next((s for d, s in copied.items() if path.startswith(d + "/")
                                                and (ROOT / s / path[len(d) + 1:]).exists()), None)
                assert src is not None, f"{dockerfile.name}: RUN uses {token}, which no COPY puts at {path}"
                assert (ROOT / src).exists()
    words = [w for w, _ in ins]
    assert "USER" in words and "rtdecode" in dict(ins)["USER"], "the image must not run as root"
    health = dict(ins)["HEALTHCHECK"]
    assert "rtdecode" in health and "check" in health and "--timeout" in health
    assert dict(ins)["ENTRYPOINT"] == '["rtdecode", "serve"]'
    args = [a for w, a in ins if w == "ARG"]
    assert any(a.startswith(("BASE", "L4T_BASE")) for a in args) and any(a.startswith("ORT_") for a in args)


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    for needed in ("rtdecode", "models", "deploy", "pyproject.toml", "constraints.txt", "README.md"):
        assert needed not in ignored


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_parse_and_are_executable(script: Path) -> None:
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "set -euo pipefail" in script.read_text()


def test_systemd_unit_policy() -> None:
    unit = (ROOT / "deploy" / "systemd" / "rtdecode.service").read_text()
    active = [ln for ln in unit.splitlines() if ln and not ln.startswith("#")]
    keys = dict(ln.split("=", 1) for ln in active if "=" in ln and not ln.startswith("["))
    assert keys["Restart"] == "on-failure" and float(keys["RestartSec"]) > 0
    assert "rtdecode serve" in keys["ExecStart"] and "rtdecode doctor" in keys["ExecStartPre"]
    assert keys["LimitRTPRIO"] and keys["LimitMEMLOCK"] == "infinity"
    assert "WatchdogSec" not in keys  # no sd_notify in the daemon: a watchdog would kill it
    assert "#CPUSchedulingPolicy=fifo" in unit and "#CPUAffinity=" in unit
    assert set(keys["RestartPreventExitStatus"].split()) == {"2", "4"}  # config / model errors


def test_install_unit_stages_a_usable_config(tmp_path: Path) -> None:
    cfg = ROOT / "deploy" / "configs" / "cortex-sim.toml"
    res = subprocess.run([str(ROOT / "deploy" / "systemd" / "install-unit.sh"), "--root", str(tmp_path),
                          "--prefix", str(ROOT), "--config", str(cfg)],
                         capture_output=True, text=True, check=False, timeout=30)
    assert res.returncode == 0, res.stderr
    unit = (tmp_path / "etc" / "systemd" / "system" / "rtdecode.service").read_text()
    assert f"{ROOT}/venv/bin/rtdecode serve" in unit
    staged = tmp_path / "etc" / "rtdecode" / "config.toml"
    assert f'"{ROOT}/models/cortex_wiener.onnx"' in staged.read_text()
    loaded = load_config(staged, environ={})  # model paths now absolute and existing
    assert loaded.decoders[0].model == ROOT / "models" / "cortex_wiener.onnx"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_configs_validate_and_fit_their_models(path: Path) -> None:
    cfg = load_config(path, environ={})
    for d in cfg.decoders:
        meta = read_metadata(d.model)
        if cfg.source.channels is not None:
            assert meta.channels == cfg.source.channels, f"{d.name}: model has {meta.channels} channels"
        if cfg.source.rate_hz is not None:
            assert meta.rate_hz == pytest.approx(cfg.source.rate_hz), f"{d.name}: model rate {meta.rate_hz}"
        if d.smoothing is not None:
            assert meta.task == "classification"


def test_gesture_config_is_the_hdsemg_classifier() -> None:
    cfg = load_config(ROOT / "deploy" / "configs" / "hdsemg-gesture.toml", environ={})
    (d,) = cfg.decoders
    meta = read_metadata(d.model)
    assert meta.grid_shape == [16, 4] and meta.channels == 64 and len(meta.outputs) == 5
    assert d.smoothing is not None and d.providers[0] == "tensorrt"


def test_the_demo_model_embedded_in_the_package_is_the_shipped_one() -> None:
    """rtdecode/data/cortex_wiener.onnx lets a regular install run the demo (issue 12)."""
    embedded = ROOT / "rtdecode" / "data" / "cortex_wiener.onnx"
    assert embedded.read_bytes() == (ROOT / "models" / "cortex_wiener.onnx").read_bytes(), (
        "the embedded demo model differs from models/cortex_wiener.onnx: rerun "
        "scripts/build_models.py cortex_wiener")
