"""ONNX Runtime streaming models: contract checks, streaming == offline, provider choice."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from rtdecode.decoders.linear import apply_wiener, fit_wiener, lagged_design
from rtdecode.errors import ModelError
from rtdecode.runtime.providers import (
    ProviderSettings,
    available_providers,
    check_session_providers,
    choose_providers,
    provider_list,
    provider_options,
)
from rtdecode.runtime.streaming import StreamingModel, read_metadata
from rtdecode.runtime.warmup import warm_up_until_stable
from tests.modelfactory import linear_model

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "models").glob("*.onnx"))


def _random_split(n: int, rng: np.random.Generator) -> list[int]:
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.choice([0, 1, 2, 5, 17, 64, 300]))))
    return cuts


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_models_stream_equals_offline(path: Path) -> None:
    m = StreamingModel(path).open()
    meta = m.meta
    rng = np.random.default_rng(1)
    x = rng.standard_normal((700, meta.model_channels)).astype(np.float32)
    offline = m.step(x)
    m.reset()
    cuts = _random_split(len(x), rng)
    streamed = np.concatenate([m.step(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
    # float32 parity relative to the output scale (the criterion `rtdecode verify` uses):
    # deep models with outputs in physical units (e.g. mm/s ~ 1e2) accumulate ~1e-6 × scale.
    scale = max(1.0, float(np.abs(offline).max()))
    np.testing.assert_allclose(streamed, offline, rtol=1e-5, atol=1e-5 * scale)
    assert offline.shape == (700, len(meta.outputs))


def test_linear_graph_equals_numpy_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6))
    y = x @ rng.standard_normal((6, 2)) + 0.1 * rng.standard_normal((400, 2))
    W, b = fit_wiener(x, y, lags=4)
    assert lagged_design(x, 4).shape == (400, 24)
    path = linear_model(tmp_path / "m.onnx", rate_hz=100, channels=6, lags=4)
    m = StreamingModel(path).open()
    ref = apply_wiener(x.astype(np.float32), *_weights_of(path))
    np.testing.assert_allclose(m.step(x.astype(np.float32)), ref, rtol=1e-4, atol=1e-5)
    # and the fitted filter explains the data it was fitted on
    res = y - apply_wiener(x, W, b)
    assert res.var() < 0.05 * y.var()


def _weights_of(path: Path) -> tuple[np.ndarray, np.ndarray]:
    model = onnx.load(str(path))
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    return init["W"], init["b"]


def test_corrupt_model_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(ModelError, match="corrupt"):
        StreamingModel(bad).open()
    with pytest.raises(ModelError, match="does not exist"):
        StreamingModel(tmp_path / "missing.onnx").open()


def test_model_without_metadata_refused(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, "T"])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, "T"])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "plain.onnx"
    onnx.save(m, str(p))
    with pytest.raises(ModelError, match="not exported by rtdecode"):
        StreamingModel(p).open()


def test_state_declared_but_missing_in_graph(tmp_path: Path) -> None:
    good = linear_model(tmp_path / "m.onnx", rate_hz=100, channels=3, lags=1)
    model = onnx.load(str(good))
    meta = read_metadata(good)
    meta = meta.model_copy(update={"states": [{"name": "state_0", "shape": [1, 3, 2]}]})
    from rtdecode.runtime.metadata import METADATA_KEY, StateSpec
    meta.states = [StateSpec(name="state_0", shape=[1, 3, 2])]
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    p = tmp_path / "liar.onnx"
    onnx.save(model, str(p))
    with pytest.raises(ModelError, match="state 'state_0'"):
        StreamingModel(p).open()


def test_provider_choice_falls_back_and_reports() -> None:
    assert "cpu" in available_providers()
    chosen = choose_providers(["tensorrt", "cuda", "cpu"])
    assert chosen[-1] == "CPUExecutionProvider"
    if "cuda" not in available_providers():
        with pytest.raises(ModelError, match="required"):
            choose_providers(["cuda", "cpu"], require_first=True)
    with pytest.raises(ModelError, match="unknown"):
        choose_providers(["tpu"])


def test_warm_up_leaves_zero_state(tmp_path: Path) -> None:
    p = linear_model(tmp_path / "m.onnx", rate_hz=100, channels=3, lags=5)
    m = StreamingModel(p).open()
    x = np.ones((10, 3), np.float32)
    ref = m.step(x)
    m.reset()
    m.warm_up(runs=7)
    np.testing.assert_array_equal(m.step(x), ref)


def test_fallback_is_an_error_unless_opted_in(caplog: pytest.LogCaptureFixture) -> None:
    missing = next((p for p in ("tensorrt", "cuda") if p not in available_providers()), None)
    if missing is None:
        pytest.skip("every GPU provider is available here: no fallback to provoke")
    with pytest.raises(ModelError, match="onnxruntime-gpu"):
        choose_providers([missing, "cpu"], require_first=True)
    with caplog.at_level("WARNING"):
        assert choose_providers([missing, "cpu"], require_first=False) == ["CPUExecutionProvider"]
    assert "falling back to cpu because require_provider = false" in caplog.text
    path = ROOT / "models" / "cortex_wiener.onnx"
    with pytest.raises(ModelError, match="required"):
        StreamingModel(path, [missing, "cpu"], require_provider=True).open()
    m = StreamingModel(path, [missing, "cpu"], require_provider=False).open()
    assert m.provider_short == "cpu" and m.provider == "CPUExecutionProvider"


def test_silent_session_fallback_is_caught(caplog: pytest.LogCaptureFixture) -> None:
    """ORT creates the session on the CPU when CUDA libraries are missing; that must be loud."""
    asked = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ModelError, match="could not start the 'cuda'"):
        check_session_providers(asked, ["CPUExecutionProvider"], require_first=True, origin="m")
    with caplog.at_level("WARNING"):
        assert check_session_providers(asked, ["CPUExecutionProvider"], require_first=False,
                                       origin="m") == "cpu"
    assert "falling back to cpu" in caplog.text
    assert check_session_providers(asked, asked, require_first=True, origin="m") == "cuda"


def test_gpu_provider_options(tmp_path: Path) -> None:
    s = ProviderSettings(device_id=1, trt_engine_dir=tmp_path / "trt" / "m" / "key",
                         trt_timing_dir=tmp_path / "trt" / "_timing" / "t", fp16=True, max_frames=256,
                         x_channels=64)
    trt = provider_options("tensorrt", s)
    assert trt["trt_engine_cache_enable"] == "True"
    assert trt["trt_engine_cache_path"] == str(tmp_path / "trt" / "m" / "key")
    assert trt["trt_timing_cache_path"] == str(tmp_path / "trt" / "_timing" / "t")
    off = provider_options("tensorrt", ProviderSettings())  # no key (TensorRT / GPU unreadable): no cache
    assert off["trt_engine_cache_enable"] == "False" and "trt_engine_cache_path" not in off
    assert off["trt_timing_cache_enable"] == "False" and "trt_profile_max_shapes" not in off
    assert trt["trt_fp16_enable"] == "True" and trt["device_id"] == "1"
    assert trt["trt_profile_min_shapes"] == "x:1x64x1" and trt["trt_profile_max_shapes"] == "x:1x64x256"
    cuda = provider_options("cuda", s)
    assert cuda["device_id"] == "1" and cuda["cudnn_conv_algo_search"] == "HEURISTIC"
    assert "enable_cuda_graph" not in cuda
    assert provider_options("cuda", ProviderSettings(cuda_graph=True))["enable_cuda_graph"] == "1"
    assert provider_options("cpu", s) == {}
    full = provider_list(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], s)
    assert full[0][0] == "TensorrtExecutionProvider" and full[2] == "CPUExecutionProvider"


def test_warm_up_runs_until_stable_and_reports() -> None:
    m = StreamingModel(ROOT / "models" / "cortex_wiener.onnx").open()
    med = m.warm_up(runs=30, max_runs=500, max_s=10.0)
    w = m.warmup
    assert w is not None and 30 <= w.runs <= 500 and w.median_s == med > 0
    assert w.stable or w.runs == 500 or w.elapsed_s >= 10.0
    assert m.frames_seen == 0
    assert m.warm_up(runs=0) == 0.0 and m.warmup.runs == 0


def test_warm_up_criterion_on_a_settling_step() -> None:
    """A step whose time decays (arenas, caches, engines) then stays flat: warm-up outlasts the decay."""
    calls = []

    def spin(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    def step() -> None:
        calls.append(1)
        k = len(calls)
        spin(max(0.004 * 0.6 ** k, 5e-5))  # reaches the 50 µs floor at call 9

    rep = warm_up_until_stable(step, min_runs=5, window=5, tolerance=0.5, max_runs=1000, max_s=30.0)
    assert rep.runs >= 9 + 5  # not stable while still decaying
    assert rep.first_s >= 0.002


def test_gpu_config_fields_validate(tmp_path: Path) -> None:
    from rtdecode.config import load_config
    from rtdecode.errors import ConfigError

    model = ROOT / "models" / "cortex_wiener.onnx"

    def cfg(extra: str) -> Path:
        p = tmp_path / "c.toml"
        p.write_text(f'[source]\nname = "s"\n[[decoders]]\nname = "d"\nmodel = "{model}"\n{extra}\n')
        return p

    d = load_config(cfg('providers = ["cuda", "cpu"]\ncuda_graph_frames = 1\ndevice_id = 1'),
                    environ={}).decoders[0]
    assert d.require_provider is True and d.io_binding == "auto" and d.cuda_graph_frames == 1
    with pytest.raises(ConfigError, match="fp16 applies to the TensorRT"):
        load_config(cfg("fp16 = true"), environ={})
    with pytest.raises(ConfigError, match="cuda_graph_frames needs"):
        load_config(cfg('providers = ["tensorrt", "cuda"]\ncuda_graph_frames = 1'), environ={})
    with pytest.raises(ConfigError, match="cuda_graph_frames needs"):
        load_config(cfg('providers = ["cuda"]\nio_binding = false\ncuda_graph_frames = 1'), environ={})
    with pytest.raises(ConfigError, match="io_binding"):
        load_config(cfg('io_binding = "sometimes"'), environ={})
