"""IOBinding path (state ping-ponged between device buffers) == plain path == offline, on the CPU.

The same :class:`BoundStepper` runs on CUDA / TensorRT with device ``cuda``
(tests/gpu/test_gpu_providers.py); here it runs with device ``cpu`` on the shipped models.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rtdecode.errors import ModelError
from rtdecode.runtime.binding import BoundStepper
from rtdecode.runtime.streaming import StreamingModel

ROOT = Path(__file__).resolve().parents[2]
MODELS = [ROOT / "models" / n for n in
          ("openhdemg_gamma.onnx", "flexemg_mlp.onnx", "cortex_wiener.onnx")]


def _random_split(n: int, rng: np.random.Generator) -> list[int]:
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.choice([0, 1, 2, 3, 5, 17, 64, 300]))))
    return cuts


def _stream(m: StreamingModel, x: np.ndarray, cuts: list[int]) -> np.ndarray:
    return np.concatenate([m.step(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_iobinding_stream_equals_plain_and_offline(path: Path) -> None:
    plain = StreamingModel(path, io_binding=False).open()
    bound = StreamingModel(path, io_binding=True).open()
    assert not plain.uses_io_binding and bound.uses_io_binding
    meta = plain.meta
    assert meta is not None
    rng = np.random.default_rng(7)
    x = rng.standard_normal((900, meta.model_channels)).astype(np.float32)
    offline = plain.step(x)
    plain.reset()
    cuts = _random_split(len(x), rng)
    y_plain = _stream(plain, x, cuts)
    y_bound = _stream(bound, x, cuts)
    scale = max(1.0, float(np.abs(offline).max()))
    np.testing.assert_allclose(y_bound, y_plain, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(y_bound, offline, rtol=1e-5, atol=1e-5 * scale)
    # the final states agree too (read back from the bound OrtValues)
    for name, s in plain._state.items():
        np.testing.assert_allclose(bound._state[name], s, rtol=1e-5, atol=1e-5 * scale)
    assert bound.frames_seen == plain.frames_seen == len(x)
    # reset really zeroes the device-side state: a second pass repeats the first
    bound.reset()
    np.testing.assert_array_equal(_stream(bound, x, cuts), y_bound)


def test_state_buffers_live_on_the_provider_device() -> None:
    m = StreamingModel(MODELS[0], io_binding=True).open()
    devs = m.state_devices()
    assert len(devs) == 2 * len(m.meta.states) and all(d.lower() == "cpu" for d in devs)


@pytest.mark.parametrize("path", MODELS[:1] + MODELS[2:], ids=["openhdemg_gamma", "cortex_wiener"])
def test_fixed_address_path_equals_variable_path(path: Path) -> None:
    """The fixed-shape, fixed-address bindings (what CUDA graphs replay) mixed with other chunk sizes."""
    plain = StreamingModel(path, io_binding=False).open()
    meta = plain.meta
    assert meta is not None and plain._sess is not None
    stepper = BoundStepper(plain._sess, meta.states, device="cpu", x_channels=meta.model_channels,
                           y_channels=len(meta.outputs), graph_frames=4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, meta.model_channels)).astype(np.float32)
    offline = plain.step(x)
    parts, a = [], 0
    while a < len(x):
        n = int(rng.choice([4, 4, 4, 1, 7]))
        chunk = np.ascontiguousarray(x[a:a + n].T[None], dtype=np.float32)
        parts.append(stepper.run(chunk)[0].T)  # no copy: the result must be the caller's
        a += n
    scale = max(1.0, float(np.abs(offline).max()))
    np.testing.assert_allclose(np.concatenate(parts), offline, rtol=1e-5, atol=1e-5 * scale)


def test_long_chunks_are_split_exactly() -> None:
    a = StreamingModel(MODELS[0], io_binding=True, max_frames=7).open()
    b = StreamingModel(MODELS[0], io_binding=False).open()
    x = np.random.default_rng(0).standard_normal((100, a.meta.model_channels)).astype(np.float32)
    np.testing.assert_allclose(a.step(x), b.step(x), rtol=1e-5, atol=1e-5)


def test_cuda_graph_request_on_cpu_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = StreamingModel(MODELS[2], cuda_graph_frames=1).open()
    assert "cuda_graph_frames=1 ignored" in caplog.text
    assert not m.uses_io_binding


def test_bad_io_binding_value_refused() -> None:
    with pytest.raises(ModelError, match="io_binding"):
        StreamingModel(MODELS[0], io_binding="yes")
