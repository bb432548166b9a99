"""Warming a decoder just before its frame: the warm step, the pipeline's pre-wake, the transit clock.

Timing lives in the benchmarks (docs/performance.md); here: a warm step never changes what is
published, the pre-wake warms exactly the decoders whose frame is near, and the delay estimate
follows the smallest recent transit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import DecoderConfig
from rtdecode.runtime.streaming import StreamingModel
from rtdecode.service.pipeline import Pipeline
from rtdecode.service.watch import TransitClock
from tests.modelfactory import linear_model

CHAIN = [{"kind": "rms", "window_s": 0.05}, {"kind": "decimate", "factor": 4}]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return linear_model(tmp_path / "m.onnx", rate_hz=200.0, channels=4, chain=CHAIN, lags=3)


def test_warm_step_runs_the_real_step_and_puts_the_state_back(model: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((12, 4)).astype(np.float32)
    plain, warmed = StreamingModel(model).open(), StreamingModel(model).open()
    for i in range(len(frames)):
        state = {k: v.copy() for k, v in warmed._state.items()}
        assert warmed.warm_step()
        assert warmed.frames_seen == i  # frames_seen and every state array unchanged
        for k, v in warmed._state.items():
            np.testing.assert_array_equal(v, state[k])
        np.testing.assert_array_equal(warmed.step(frames[i:i + 1]), plain.step(frames[i:i + 1]))


def test_warm_step_does_nothing_on_the_iobinding_path(model: Path) -> None:
    bound = StreamingModel(model, io_binding=True).open()
    assert bound.uses_io_binding and not bound.warm_step()


def test_prewarm_warms_the_decoders_whose_frame_is_near_and_changes_nothing(model: Path) -> None:
    x = np.random.default_rng(1).standard_normal((400, 4)).astype(np.float32)
    t = np.arange(len(x)) / 200.0
    outs = {}
    for prewake in (False, True):
        p = Pipeline([DecoderConfig(name="d", model=model, keep_warm=True),
                      DecoderConfig(name="cold", model=model, keep_warm=False)], 200.0, 4).open()
        warm, cold = p.decoders
        due_ticks, framed, ys = [], [], []
        for k in range(len(x)):  # one-sample ticks: a frame every 4th
            o = p.process(x[k:k + 1], t[k:k + 1])
            ys.append(o[0].y)
            if o[0].y.shape[0]:
                framed.append(k)
            if p.warm_due:
                due_ticks.append(k)
                if prewake:
                    before = warm.prewarm_steps
                    p.prewarm()
                    assert warm.prewarm_steps == before + 1 and not p.warm_due
        outs[prewake] = np.concatenate(ys)
        # due exactly on the frameless ticks within two ticks of the next frame
        expect = [k for k in range(framed[-1]) if k not in framed
                  and next(f for f in framed if f > k) - k <= 2]
        assert [k for k in due_ticks if k < framed[-1]] == expect
        assert cold.warm_steps == cold.prewarm_steps == 0  # keep_warm off: never warmed
        assert (warm.prewarm_steps > 0) == prewake
        assert p.describe()[0]["prewarm_steps"] == warm.prewarm_steps
    np.testing.assert_array_equal(outs[True], outs[False])


def test_transit_clock_keeps_the_smallest_delay_and_drifts_up() -> None:
    clock = TransitClock()
    assert clock.delay_s == float("inf")
    for d in (0.004, 0.0002, 0.003, 0.0009):  # a busy pull sees a longer delay: ignored
        clock.update(d)
    assert clock.delay_s == pytest.approx(0.0002 + 2 * TransitClock.DRIFT_S)
    for _ in range(1000):  # the transport became slower: the estimate follows it up
        clock.update(0.0005)
    assert clock.delay_s == pytest.approx(0.0005)
