"""TensorRT engine-cache keys: real model files, real folders and manifests on disk.

TensorRT itself is not here: the engine files below are written by the tests in the place and
under the name ONNX Runtime's TensorRT provider uses, to exercise the key / hit / miss / stale
logic that decides which folder ONNX Runtime is pointed at. Building and loading a real engine
is tested in tests/gpu/test_gpu_providers.py (skipped without TensorRT).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from rtdecode.runtime import engine_cache as ec
from rtdecode.runtime.devices import cuda_device, decode_trt_version, tensorrt_version
from rtdecode.runtime.streaming import StreamingModel, read_metadata

ROOT = Path(__file__).resolve().parents[2]
WIENER = ROOT / "models" / "cortex_wiener.onnx"
KF = ROOT / "models" / "cortex_kf.onnx"
ORIN = ec.Platform(tensorrt="10.3.0", gpu="Orin (nvgpu)", compute_capability="8.7", onnxruntime="1.20.0")


def _key(model: Path, platform: ec.Platform = ORIN, *, fp16: bool = False,
         max_frames: int = 2048) -> ec.EngineKey:
    return ec.engine_key(model, x_channels=read_metadata(model).model_channels, max_frames=max_frames,
                         fp16=fp16, platform=platform)


def _built(root: Path, key: ec.EngineKey) -> Path:
    """What a successful TensorRT start leaves: engine + profile files and the manifest."""
    folder = root / key.relpath
    folder.mkdir(parents=True)
    (folder / "TensorrtExecutionProvider_TRTKernel_graph_main_0_0.engine").write_bytes(b"\0" * 64)
    (folder / "TensorrtExecutionProvider_TRTKernel_graph_main_0_0.profile").write_bytes(b"\0" * 8)
    ec.write_manifest(folder, key)
    return folder


def test_trt_version_decoding() -> None:
    assert decode_trt_version(100300) == "10.3.0"  # TensorRT 10: major*10000 + minor*100 + patch
    assert decode_trt_version(101302) == "10.13.2"
    assert decode_trt_version(8601) == "8.6.1"  # TensorRT 8: major*1000 + minor*100 + patch
    assert decode_trt_version(8503) == "8.5.3"


def test_platform_tag_names_trt_gpu_and_compute_capability() -> None:
    assert ORIN.tag == "trt10.3.0-orin-nvgpu-sm87"
    assert replace(ORIN, gpu="NVIDIA H200", compute_capability="9.0").tag == "trt10.3.0-nvidia-h200-sm90"


def test_key_is_the_model_bytes_not_its_name(tmp_path: Path) -> None:
    copy = tmp_path / "renamed.onnx"
    shutil.copyfile(WIENER, copy)
    a, b = _key(WIENER), _key(copy)
    assert a.model_sha256 == b.model_sha256 == ec.file_sha256(WIENER) and a.digest == b.digest
    assert a.relpath.parts[0] == "cortex_wiener" and b.relpath.parts[0] == "renamed"
    shutil.copyfile(KF, copy)  # same file name, other model: a new key
    assert _key(copy).digest != b.digest


@pytest.mark.parametrize("change", ["tensorrt", "gpu", "compute_capability", "onnxruntime", "fp16",
                                    "max_frames"])
def test_every_key_field_changes_the_folder(change: str) -> None:
    base = _key(WIENER)
    if change == "fp16":
        other = _key(WIENER, fp16=True)
    elif change == "max_frames":
        other = _key(WIENER, max_frames=512)
    else:
        other = _key(WIENER, replace(ORIN, **{change: "other"}))
    assert other.digest != base.digest and other.relpath != base.relpath


def test_hit_miss_and_stale_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "trt"
    key = _key(WIENER)
    status = ec.cache_status(root, key)
    assert status.state == "miss" and str(root / key.relpath) in status.detail
    old = _built(root, key)
    assert ec.cache_status(root, key).state == "hit"
    upgraded = _key(WIENER, replace(ORIN, tensorrt="10.7.0"))  # JetPack update: new TensorRT
    status = ec.cache_status(root, upgraded)
    assert status.state == "stale" and list(status.stale) == [old]
    assert "tensorrt: 10.3.0 → 10.7.0" in status.stale[old]
    assert all(not d.startswith("model_sha256") for d in status.stale[old])
    assert ec.cache_status(root, key).state == "hit"  # the old key still finds its own engine
    assert ec.prune(root, upgraded) == [old] and not old.exists()
    assert ec.cache_status(root, upgraded).state == "miss"


def test_changed_model_file_is_stale_not_hit(tmp_path: Path) -> None:
    root, model = tmp_path / "trt", tmp_path / "decoder.onnx"
    shutil.copyfile(WIENER, model)
    folder = _built(root, _key(model))
    shutil.copyfile(KF, model)  # retrained / re-exported under the same name
    status = ec.cache_status(root, _key(model))
    assert status.state == "stale" and any(d.startswith("model_sha256") for d in status.stale[folder])


def test_manifest_without_engine_or_corrupt_is_never_a_hit(tmp_path: Path) -> None:
    root = tmp_path / "trt"
    key = _key(WIENER)
    folder = root / key.relpath
    folder.mkdir(parents=True)
    ec.write_manifest(folder, key)  # TensorRT failed before writing its engine
    assert ec.cache_status(root, key).state == "miss"
    (folder / "x.engine").write_bytes(b"\0")
    (folder / ec.MANIFEST).write_text("{not json", encoding="utf-8")
    assert ec.read_manifest(folder) is None
    assert ec.cache_status(root, key).state == "miss"


def test_plan_folders_and_describe(tmp_path: Path) -> None:
    plan = ec.plan(WIENER, tmp_path, x_channels=read_metadata(WIENER).model_channels, max_frames=2048,
                   fp16=True, platform=ORIN)
    assert plan.builds and plan.status.state == "miss"
    assert plan.engine_dir is not None and plan.engine_dir.parent == tmp_path / "cortex_wiener"
    assert plan.engine_dir.name.startswith("trt10.3.0-orin-nvgpu-sm87-fp16-")
    assert plan.timing_dir == tmp_path / ec.TIMING_DIR / "trt10.3.0-orin-nvgpu-sm87"
    d = ec.describe(plan)
    assert d["state"] == "miss" and d["key"]["precision"] == "fp16" and d["key"]["profile"].endswith("x2048")


def test_plan_without_tensorrt_switches_the_cache_off(tmp_path: Path) -> None:
    if ec.probe_platform() is not None:
        pytest.skip(f"this machine has TensorRT {tensorrt_version()} and CUDA device {cuda_device(0)}")
    plan = ec.plan(WIENER, tmp_path, x_channels=4, max_frames=16, fp16=False)
    assert plan.status.state == "unavailable" and plan.key is None
    assert plan.engine_dir is None and plan.timing_dir is None and not list(tmp_path.iterdir())


def test_cpu_model_has_no_engine_plan() -> None:
    m = StreamingModel(WIENER, ["cpu"]).open()
    assert m.engine_plan is None and m.provider_short == "cpu"


def test_build_phase_reports_the_running_build_from_another_thread() -> None:
    assert ec.build_phase("loading models") == "loading models"
    started, release = threading.Event(), threading.Event()

    def build() -> None:  # the daemon's main thread inside ONNX Runtime's engine build
        with ec.ENGINE_BUILDS.building("flexemg_sconvnet_c.onnx"):
            started.set()
            release.wait(10)

    t = threading.Thread(target=build)
    t.start()
    try:
        assert started.wait(10)
        phase = ec.build_phase("loading models")  # what the heartbeat thread reads
        assert phase.startswith("building TensorRT engine for flexemg_sconvnet_c.onnx: ")
        assert " s so far" in phase
    finally:
        release.set()
        t.join()
    assert ec.build_phase("warming up") == "warming up"
