"""Pipeline: the model's own chain, input repair, flags; never a non-finite output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import DecoderConfig, PreprocessingConfig
from rtdecode.errors import ConfigError, ModelError
from rtdecode.service.pipeline import Pipeline
from rtdecode.types import Flags
from tests.modelfactory import linear_model

CHAIN = [{"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": 5.0},
         {"kind": "rms", "window_s": 0.05},
         {"kind": "decimate", "factor": 4}]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return linear_model(tmp_path / "m.onnx", rate_hz=200.0, channels=4, chain=CHAIN, lags=3)


def _pipe(model: Path, **prep) -> Pipeline:
    return Pipeline([DecoderConfig(name="d", model=model)], 200.0, 4,
                    PreprocessingConfig(**prep)).open()


def test_chunked_equals_one_pass(model: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2001, 4)).astype(np.float32)
    t = np.arange(len(x)) / 200.0
    (one,) = _pipe(model).process(x, t)
    p = _pipe(model)
    ys, ts = [], []
    i = 0
    while i < len(x):
        n = int(rng.integers(0, 40))
        (o,) = p.process(x[i:i + n], t[i:i + n])
        ys.append(o.y)
        ts.append(o.t)
        i += n
    np.testing.assert_allclose(np.concatenate(ys), one.y, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate(ts), one.t)
    assert one.y.shape[0] == len(x) // 4
    # the first receptive_field - 1 outputs are flagged warm-up, the rest are OK
    assert (one.flags[:2] & Flags.WARMUP).all() and (one.flags[2:] == 0).all()


def test_keep_warm_steps_do_not_change_the_output(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rtdecode.service.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "WARM_INTERVAL_S", 0.0)  # warm on every frameless tick
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((801, 4)) * 3).astype(np.float32)
    t = np.arange(len(x)) / 200.0
    outs = {}
    for warm in (False, True):
        p = Pipeline([DecoderConfig(name="d", model=model, keep_warm=warm)], 200.0, 4).open()
        ys = [p.process(x[i:i + 1], t[i:i + 1])[0].y for i in range(len(x))]  # 1-sample ticks
        outs[warm] = np.concatenate(ys)
        assert (p.decoders[0].warm_steps > 0) == warm
        assert p.describe()[0]["warm_steps"] == p.decoders[0].warm_steps
    # 3 of 4 ticks complete no frame: scratch steps ran on the two before each frame, and the
    # state is untouched
    np.testing.assert_array_equal(outs[True], outs[False])
    assert outs[True].shape[0] == len(x) // 4


@pytest.mark.parametrize("tick", [1, 3])
def test_keep_warm_steps_come_on_the_ticks_before_a_frame(model: Path, tick: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import rtdecode.service.pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "WARM_INTERVAL_S", 0.0)  # only the frame rule limits them
    x = np.random.default_rng(4).standard_normal((1200, 4)).astype(np.float32)
    t = np.arange(len(x)) / 200.0
    p = Pipeline([DecoderConfig(name="d", model=model, keep_warm=True)], 200.0, 4).open()
    d = p.decoders[0]
    warmed, framed = [], []  # tick indices
    for k, i in enumerate(range(0, len(x), tick)):
        before = d.warm_steps
        (o,) = p.process(x[i:i + tick], t[i:i + tick])
        if d.warm_steps > before:
            warmed.append(k)
        if o.y.shape[0]:
            framed.append(k)
    # every frameless tick within two ticks of the next frame's warms, and no other one does:
    # one step per tick when a frame takes 4 one-sample ticks would be 3 per frame
    due = {k for k in range(framed[-1]) if k not in framed
           and next(f for f in framed if f > k) - k <= 2}
    assert set(warmed) == due and len(warmed) <= 2 * len(framed)


@pytest.mark.parametrize("policy", ["hold", "zero"])
def test_nonfinite_input_is_repaired_and_flagged(model: Path, policy: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 4)).astype(np.float32)
    x[100:140, 2] = np.nan
    x[0, 1] = np.inf
    x[399, 0] = -np.inf
    (o,) = _pipe(model, nonfinite=policy).process(x, np.arange(400) / 200.0)
    assert np.isfinite(o.y).all()
    assert (o.flags & Flags.BAD_INPUT).all()


def test_range_check_flags_and_clips(model: Path) -> None:
    x = np.zeros((40, 4), np.float32)
    x[5, 0] = 1e6
    (o,) = _pipe(model, max_abs=100.0).process(x, np.arange(40) / 200.0)
    assert (o.flags & Flags.BAD_INPUT).all() and np.isfinite(o.y).all()


def test_model_against_wrong_stream_is_refused(model: Path) -> None:
    with pytest.raises(ModelError, match="channels"):
        Pipeline([DecoderConfig(name="d", model=model)], 200.0, 5).open()
    with pytest.raises(ModelError, match="Hz"):
        Pipeline([DecoderConfig(name="d", model=model)], 250.0, 4).open()


def test_config_chain_must_match_the_models(model: Path) -> None:
    other = [dict(CHAIN[0], cutoff_hz=10.0)] + CHAIN[1:]
    with pytest.raises(ConfigError, match="preprocessing.chain"):
        _pipe(model, chain=other)
    _pipe(model, chain=CHAIN)  # the same chain is accepted


def test_wrong_chunk_width_is_an_error(model: Path) -> None:
    with pytest.raises(ModelError, match="expected"):
        _pipe(model).process(np.zeros((3, 7), np.float32), np.zeros(3))


def test_classifier_smoothing_is_causal_and_declared(tmp_path: Path) -> None:
    from rtdecode.config import SmoothingConfig
    from rtdecode.decoders.smoothing import ProbabilitySmoother

    clf = linear_model(tmp_path / "clf.onnx", rate_hz=200.0, channels=4, lags=2, n_out=3,
                       classifier=True)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 4)).astype(np.float32)
    t = np.arange(300) / 200.0
    (raw,) = Pipeline([DecoderConfig(name="c", model=clf)], 200.0, 4).open().process(x, t)
    np.testing.assert_allclose(raw.y.sum(1), 1.0, atol=1e-5)
    cfg = DecoderConfig(name="c", model=clf, smoothing=SmoothingConfig(method="majority", window_s=0.1))
    pipe = Pipeline([cfg], 200.0, 4).open()
    (sm,) = pipe.process(x, t)
    np.testing.assert_allclose(sm.y, ProbabilitySmoother(3, 20, "majority").step(raw.y), atol=1e-6)
    assert pipe.describe()[0]["delay_s"] == pytest.approx(9.5 / 200.0)
    with pytest.raises(ConfigError, match="smoothing"):
        Pipeline([DecoderConfig(name="r", model=_reg(tmp_path),
                                smoothing=SmoothingConfig(window_s=0.1))], 200.0, 4).open()


def _reg(tmp_path: Path) -> Path:
    return linear_model(tmp_path / "reg.onnx", rate_hz=200.0, channels=4, lags=2)
