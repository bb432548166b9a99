"""Plausibility bounds: training ranges in the metadata, input / output limits, BAD_INPUT that
lasts as long as the decoder's memory, and the stages' declared memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rtdecode.config import DecoderConfig, PreprocessingConfig
from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError
from rtdecode.export.onnx_graphs import causal_conv_graph, write_model
from rtdecode.runtime.bounds import InputLimits, ModelBounds, OutputLimits, RangeStats, model_bounds
from rtdecode.runtime.metadata import ModelMetadata, OutputSpec
from rtdecode.runtime.streaming import read_metadata
from rtdecode.service.pipeline import Pipeline
from rtdecode.types import Flags

RATE = 200.0


def test_range_stats_of_data() -> None:
    x = np.zeros((10001, 2))
    x[:, 0] = np.linspace(-1, 1, 10001)
    x[:, 1] = np.linspace(0, 100, 10001)
    x[5, 1] = np.nan  # ignored
    r = RangeStats.of(x)
    assert r.min == [-1.0, 0.0] and r.max == [1.0, 100.0]
    assert r.lo[0] == pytest.approx(-0.998, abs=1e-3) and r.hi[1] == pytest.approx(99.9, abs=1e-2)
    with pytest.raises(ValueError, match="no finite"):
        RangeStats.of(np.full((3, 1), np.nan))
    with pytest.raises(ValidationError, match="min <= lo"):
        RangeStats(lo=[2.0], hi=[1.0], min=[0.0], max=[3.0])


def test_input_limits_use_the_robust_scale_with_a_floor() -> None:
    a = RangeStats(lo=[-1.0, 0.0, -2.0], hi=[1.0, 0.0, 2.0], min=[-5.0, 0.0, -9.0], max=[5.0, 0.0, 9.0])
    lim = InputLimits.from_ranges([a], factor=10.0).limit
    assert lim.tolist() == [10.0, 10.0, 20.0]  # channel scales 1, 0, 2; floor = median = 1
    b = RangeStats(lo=[-3.0, 0.0, 0.0], hi=[3.0, 0.0, 0.0], min=[-3.0, 0.0, 0.0], max=[3.0, 0.0, 0.0])
    # most permissive of the two: scales 3, 0, 2; floor = median = 2
    assert InputLimits.from_ranges([a, b], 10.0).limit.tolist() == [30.0, 20.0, 20.0]


def test_output_limits_clamp_and_report_rows() -> None:
    lim = OutputLimits.from_range(RangeStats(lo=[0, 0], hi=[1, 1], min=[0, -1], max=[2, 1]), margin=0.5)
    assert lim.lo.tolist() == [-1.0, -2.0] and lim.hi.tolist() == [3.0, 2.0]
    y = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, -7.0]], np.float32)
    rows = lim.clamp(y)
    assert rows is not None and rows.tolist() == [False, True, True]
    assert y.tolist() == [[0.0, 0.0], [3.0, 0.0], [0.0, -2.0]]
    assert lim.clamp(np.zeros((2, 2), np.float32)) is None


def _model(tmp_path: Path, *, bounds: bool, chain: list[dict] | None = None, lags: int = 3) -> Path:
    c = build_chain(chain or [], RATE, 2)
    W = np.ones((1, 2, lags), np.float32)
    b = np.zeros(1, np.float32)
    meta = ModelMetadata(name="m", rate_hz=RATE, channels=2, preprocessing=c.specs,
                         model_rate_hz=c.rate_out_hz, model_channels=2, outputs=[OutputSpec(name="y")],
                         receptive_field=lags,
                         bounds=model_bounds(np.array([[-1.0, -1.0], [1.0, 1.0]]), np.array([[-6.0], [6.0]]))
                         if bounds else None)
    return write_model(causal_conv_graph(W, b, meta), tmp_path / "m.onnx")


def _pipe(model: Path, **prep: object) -> Pipeline:
    return Pipeline([DecoderConfig(name="d", model=model, keep_warm=False)], RATE, 2,
                    PreprocessingConfig(**prep)).open()  # type: ignore[arg-type]


def test_metadata_carries_bounds_and_checks_their_size(tmp_path: Path) -> None:
    meta = read_metadata(_model(tmp_path, bounds=True))
    assert meta.bounds is not None and meta.bounds.output.max == [6.0]
    with pytest.raises(ValidationError, match="bounds cover"):
        ModelMetadata(**{**meta.model_dump(), "channels": 3, "channel_names": []})


def test_absurd_input_is_clamped_and_taints_the_receptive_field(tmp_path: Path) -> None:
    pipe = _pipe(_model(tmp_path, bounds=True, lags=3))
    x = np.full((20, 2), 0.5, np.float32)
    x[10] = 1e38
    (o,) = pipe.process(x, np.arange(20) / RATE)
    assert np.isfinite(o.y).all() and pipe.out_of_range_samples == 1
    bad = (o.flags & Flags.BAD_INPUT) != 0
    assert bad.all()  # the whole chunk held the clamped sample
    (o,) = pipe.process(np.full((5, 2), 0.5, np.float32), np.arange(20, 25) / RATE)
    bad = ((o.flags & Flags.BAD_INPUT) != 0).tolist()
    assert bad == [True, True, False, False, False]  # the clamped sample is in the next 2 rows' window


def test_outputs_outside_the_training_range_are_clamped_and_flagged(tmp_path: Path) -> None:
    pipe = _pipe(_model(tmp_path, bounds=True, lags=3))
    x = np.full((10, 2), 1.5, np.float32)  # within the input limit (10 x 1), output 9 > 6
    (o,) = pipe.process(x, np.arange(10) / RATE)
    assert o.y.max() == pytest.approx(6.0)
    clamped = (o.flags & (Flags.CLAMPED | Flags.DEGRADED)) == (Flags.CLAMPED | Flags.DEGRADED)
    assert clamped[2:].all() and not (o.flags[2:] & Flags.BAD_INPUT).any()
    st = pipe.describe()[0]
    assert st["bounds"] == "model" and st["clamped_rows"] >= 8 and st["clamp_episodes"] == 1
    ok = (o.flags == 0)
    assert (np.abs(o.y[ok]) <= 6.0).all()


def test_model_without_bounds_warns_and_checks_finiteness_only(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    pipe = _pipe(_model(tmp_path, bounds=False))
    assert "carries no training ranges" in caplog.text
    (o,) = pipe.process(np.full((6, 2), 1e6, np.float32), np.arange(6) / RATE)
    assert (o.y[2:] == 6e6).all() and pipe.describe()[0]["bounds"] == "finite only"


def test_stage_memory_covers_filters_and_windows() -> None:
    chain = build_chain([{"kind": "butter", "btype": "lowpass", "order": 2, "cutoff_hz": 5.0},
                         {"kind": "bin", "factor": 4, "reduce": "mean"}], RATE, 1)
    imp = np.zeros((4000, 1))
    imp[0] = 1.0
    y, _ = build_chain(chain.specs[:1], RATE, 1).process(imp, np.arange(4000) / RATE)
    settled = np.flatnonzero(np.abs(y[:, 0]) > 1e-3 * np.abs(y).max())[-1] / RATE
    assert settled <= chain.stages[0].memory_s <= 2 * settled + 0.05
    assert chain.memory_s == pytest.approx(chain.stages[0].memory_s + 4 / RATE)


def test_bounds_json_round_trip() -> None:
    b = model_bounds(np.eye(3), np.ones((4, 2)), data="x")
    assert ModelBounds.model_validate_json(b.model_dump_json()) == b


def test_a_counter_channel_is_not_clamped_but_other_channels_are(tmp_path: Path) -> None:
    """source.index_channel outgrows any training range: exempt from the clamp, not from NaN repair."""
    model = _model(tmp_path, bounds=True, lags=3)
    pipe = Pipeline([DecoderConfig(name="d", model=model, keep_warm=False)], RATE, 2,
                    PreprocessingConfig(), counters=[0]).open()
    x = np.full((20, 2), 0.5, np.float32)
    x[:, 0] = np.arange(1000, 1020)  # a sample counter, 1000 x its channel's training scale
    (o,) = pipe.process(x, np.arange(20) / RATE)
    assert pipe.out_of_range_samples == 0 and not (o.flags & Flags.BAD_INPUT).any()
    x[5, 1] = 1e38  # the other channel is still clamped
    x[7, 0] = np.nan  # and the counter still repaired
    (o,) = pipe.process(x, np.arange(20, 40) / RATE)
    assert pipe.out_of_range_samples == 1 and pipe.bad_samples == 1
    assert np.isfinite(o.y).all() and (o.flags & Flags.BAD_INPUT).all()


def test_a_counter_channel_outside_the_stream_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source.index_channel"):
        Pipeline([DecoderConfig(name="d", model=_model(tmp_path, bounds=True), keep_warm=False)], RATE, 2,
                 PreprocessingConfig(), counters=[2])
