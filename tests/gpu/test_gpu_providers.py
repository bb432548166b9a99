"""CUDA / TensorRT execution: streaming == offline, state on the device, CUDA graphs, keyed engine cache.

Every test here needs an NVIDIA GPU and onnxruntime-gpu. Without them each one skips with
the reason (provider not in this onnxruntime build, or present but failing to start), never
a silent pass. Run on a GPU box: ``.venv/bin/python -m pytest -m gpu tests/gpu -v``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.errors import ModelError
from rtdecode.runtime import engine_cache
from rtdecode.runtime.devices import cuda_device
from rtdecode.runtime.providers import available_providers
from rtdecode.runtime.streaming import StreamingModel

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
MODELS = [ROOT / "models" / n for n in
          ("openhdemg_gamma.onnx", "flexemg_mlp.onnx", "cortex_wiener.onnx")]
#: relative tolerance of the output scale (TensorRT fuses and reorders more than cuDNN does)
TOL = {"cuda": 1e-4, "tensorrt": 1e-3}


def _open(path: Path, provider: str, tmp_path: Path, **kw: object) -> StreamingModel:
    """Open on exactly this provider (no fallback), or skip with the reason."""
    if provider not in available_providers():
        pytest.skip(f"{provider} execution provider not in this onnxruntime build "
                    f"(has {available_providers()}); install onnxruntime-gpu on a CUDA machine")
    try:
        return StreamingModel(path, [provider], require_provider=True,
                              trt_cache_dir=tmp_path / "trt", **kw).open()  # type: ignore[arg-type]
    except ModelError as exc:
        pytest.skip(f"{provider} is in the build but did not start here: {exc.what}")


@pytest.fixture(params=["cuda", "tensorrt"])
def provider(request: pytest.FixtureRequest) -> str:
    """A GPU provider of this onnxruntime build (skips with the reason where absent)."""
    name = str(request.param)
    if name not in available_providers():
        pytest.skip(f"{name} execution provider not available (onnxruntime offers {available_providers()})")
    return name


def _split(n: int, rng: np.random.Generator) -> list[int]:
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.choice([1, 2, 5, 17, 64, 300]))))
    return cuts


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_streaming_equals_offline_on_gpu(provider: str, path: Path, tmp_path: Path) -> None:
    gpu = _open(path, provider, tmp_path)
    cpu = StreamingModel(path, ["cpu"]).open()
    assert gpu.provider_short == provider and gpu.uses_io_binding  # auto: IOBinding on a GPU
    meta = cpu.meta
    assert meta is not None
    rng = np.random.default_rng(11)
    x = rng.standard_normal((900, meta.model_channels)).astype(np.float32)
    ref = cpu.step(x)
    offline = gpu.step(x)
    gpu.reset()
    cuts = _split(len(x), rng)
    streamed = np.concatenate([gpu.step(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
    scale = max(1.0, float(np.abs(ref).max()))
    tol = TOL[provider] * scale
    np.testing.assert_allclose(offline, ref, rtol=TOL[provider], atol=tol)
    np.testing.assert_allclose(streamed, offline, rtol=TOL[provider], atol=tol)


def test_state_stays_on_the_device(provider: str, tmp_path: Path) -> None:
    m = _open(MODELS[0], provider, tmp_path)  # Gamma CNN: three state tensors
    assert m.uses_io_binding and m._bound is not None
    devices = m.state_devices()
    assert devices and all(d.lower() == "cuda" for d in devices), devices
    ptrs = [b.data_ptr() for side in m._bound._buf for b in side]
    x = np.zeros((3, m.meta.model_channels), np.float32)
    for _ in range(5):
        y = m.step(x)
        assert isinstance(y, np.ndarray)  # only y comes back to the host
    # the state was written in place into the same device buffers (ping-pong), never re-allocated
    assert [b.data_ptr() for side in m._bound._buf for b in side] == ptrs
    assert all(b.device_name().lower() == "cuda" for side in m._bound._buf for b in side)


def test_cuda_graph_steps_equal_offline(tmp_path: Path) -> None:
    path = MODELS[0]
    m = _open(path, "cuda", tmp_path, cuda_graph_frames=1)
    cpu = StreamingModel(path, ["cpu"]).open()
    assert m._bound is not None and m._bound.graph_frames == 1
    m.warm_up(30)  # captures the two ping-pong graphs
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, m.meta.model_channels)).astype(np.float32)
    ref = cpu.step(x)
    parts, a = [], 0
    while a < len(x):
        n = int(rng.choice([1, 1, 1, 4]))  # mostly graph replays, some uncaptured runs
        parts.append(m.step(x[a:a + n]))
        a += n
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(np.concatenate(parts), ref, rtol=1e-4, atol=1e-4 * scale)


def _engine_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix in (".engine", ".profile"))


def test_tensorrt_engine_cache_is_written_keyed_and_reused(tmp_path: Path) -> None:
    m = _open(MODELS[2], "tensorrt", tmp_path)
    plan = m.engine_plan
    assert plan is not None and plan.key is not None, "TensorRT runs but its version / the GPU were not read"
    assert plan.status.state == "miss" and plan.engine_dir is not None
    m.warm_up(5)
    files = _engine_files(tmp_path / "trt")
    assert files and all(f.startswith(str(plan.key.relpath)) for f in files), files
    assert engine_cache.read_manifest(plan.engine_dir) == plan.key.fields()
    again = _open(MODELS[2], "tensorrt", tmp_path)  # loads the cached engine instead of building one
    assert again.engine_plan is not None and again.engine_plan.status.state == "hit"
    again.warm_up(5)
    assert _engine_files(tmp_path / "trt") == files
    fp16 = _open(MODELS[2], "tensorrt", tmp_path, fp16=True)  # other precision: its own folder
    assert fp16.engine_plan is not None and fp16.engine_plan.engine_dir != plan.engine_dir
    assert fp16.engine_plan.status.state == "stale"  # the fp32 engine is never loaded for fp16


def test_platform_probe_matches_nvidia_smi() -> None:
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    dev = cuda_device(0)
    if exe is None or dev is None:
        pytest.skip(f"no CUDA device readable here (nvidia-smi: {exe}, libcuda probe: {dev})")
    out = subprocess.run([exe, "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", "0"],
                         capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    name, cc = (v.strip() for v in out.split(","))
    assert dev == (name, cc)


def test_trt_build_builds_then_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from rtdecode.cli import main

    _open(MODELS[2], "tensorrt", tmp_path / "probe")  # skips with the reason without TensorRT
    args = ["trt-build", str(MODELS[2]), "--cache-dir", str(tmp_path / "trt"), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["was"] == "miss" and first["state"] == "hit"
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)[0]
    assert second["was"] == "hit" and second["engine_dir"] == first["engine_dir"]


def test_doctor_reports_the_gpu_provider(tmp_path: Path, ipc_endpoint: str, unique_name: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from rtdecode.cli import main

    if "cuda" not in available_providers():
        pytest.skip(f"cuda execution provider not available (onnxruntime offers {available_providers()})")
    cfg = tmp_path / "gpu.toml"
    cfg.write_text(f'[source]\nname = "{unique_name}"\n[[decoders]]\nname = "g"\n'
                   f'model = "{MODELS[0]}"\nproviders = ["cuda"]\n[sink]\nendpoint = "{ipc_endpoint}"\n',
                   encoding="utf-8")
    rc = main(["doctor", str(cfg), "--json", "--lsl-timeout", "0", "--budget-ms", "10000"])
    r = json.loads(capsys.readouterr().out)
    assert r["decoders"][0].get("provider") == "cuda", r["decoders"]
    assert r["decoders"][0]["io_binding"] is True
    assert [d.lower() for d in r["decoders"][0]["state_devices"]] == ["cuda"]
    assert rc == 0
