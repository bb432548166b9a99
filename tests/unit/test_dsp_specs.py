"""Stage specs: validation messages that name the field, build-time checks against the
stream's rate and channels, JSON round trips and chain equality."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from rtdecode.dsp import Chain, StageSpec, build_chain, chains_equal, parse_chain
from rtdecode.dsp.specs import ButterSpec, DecimateSpec, RmsSpec
from rtdecode.errors import ConfigError, StageError

FS = 1000.0
N_CH = 4

ALL_KINDS = [
    {"kind": "scale", "gain": [1, 2, 3, 4], "offset": 0.5},
    {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45, 55]},
    {"kind": "butter", "btype": "highpass", "order": 4, "cutoff_hz": 20},
    {"kind": "rectify"},
    {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
    {"kind": "smooth", "window_s": 0.02},
    {"kind": "decimate", "factor": 2},
    {"kind": "bin", "factor": 5, "reduce": "mean"},
    {"kind": "standardize", "mean": [0, 0, 0, 0], "std": [1, 2, 3, 4]},
    {"kind": "select", "channels": [3, 2, 1, 0]},
    {"kind": "grid", "shape": [2, 2], "order": [0, 1, 2, -1]},
    {"kind": "clip", "min_value": -5, "max_value": 5},
]


def _signal(n: int = 1500, c: int = N_CH) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, c)) * 3.0, np.arange(n) / FS


def test_parse_chain_fills_defaults() -> None:
    specs = parse_chain(ALL_KINDS)
    assert [s.kind for s in specs] == [d["kind"] for d in ALL_KINDS]
    assert isinstance(specs[1], ButterSpec) and specs[1].cutoff_hz == (45.0, 55.0)
    assert isinstance(specs[6], DecimateSpec) and specs[6].antialias is True
    rms = specs[4]
    assert isinstance(rms, RmsSpec) and rms.window_s == pytest.approx(0.06)


def test_parse_chain_accepts_spec_models() -> None:
    model = ButterSpec(btype="lowpass", order=2, cutoff_hz=10)
    specs: list[StageSpec] = parse_chain([model, {"kind": "rectify"}])
    assert specs[0] == model and specs[0] is not model


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "wavelet"}, ["stage 1", "kind", "wavelet", "butter"]),
        ({"btype": "lowpass"}, ["stage 1", "kind"]),
        ({"kind": "rectify", "gain": 2}, ["stage 1", "unknown field 'gain'", "rectify"]),
        (
            {"kind": "butter", "btype": "lowpass", "order": 2, "cutoff_hz": 10, "fs": 1000},
            ["unknown field 'fs'", "cutoff_hz"],
        ),
        ({"kind": "butter", "btype": "lowpass", "order": 2}, ["'cutoff_hz'", "required"]),
        ({"kind": "butter", "btype": "lowpass", "order": 11, "cutoff_hz": 10}, ["'order'"]),
        ({"kind": "butter", "btype": "lowpass", "order": 0, "cutoff_hz": 10}, ["'order'"]),
        ({"kind": "butter", "btype": "notch", "order": 2, "cutoff_hz": 10}, ["'btype'"]),
        (
            {"kind": "butter", "btype": "bandpass", "order": 2, "cutoff_hz": 10},
            ["'cutoff_hz'", "pair"],
        ),
        (
            {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [55, 45]},
            ["'cutoff_hz'"],
        ),
        ({"kind": "butter", "btype": "lowpass", "order": 2, "cutoff_hz": [1, 2]}, ["'cutoff_hz'"]),
        ({"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": -1}, ["'cutoff_hz'"]),
        ({"kind": "rms"}, ["window_s"]),
        ({"kind": "rms", "window_s": 0.1, "sigma_s": 0.01}, ["sigma_s"]),
        ({"kind": "smooth", "shape": "gaussian"}, ["sigma_s"]),
        ({"kind": "smooth", "shape": "gaussian", "sigma_s": 0.01, "window_s": 0.1}, ["window_s"]),
        ({"kind": "rms", "window_s": -0.1}, ["'window_s'"]),
        ({"kind": "decimate", "factor": 0}, ["'factor'"]),
        ({"kind": "decimate", "factor": 2.5}, ["'factor'"]),
        ({"kind": "bin", "factor": 4, "reduce": "max"}, ["'reduce'"]),
        ({"kind": "standardize", "mean": [0, 0], "std": [1, 0]}, ["'std'", "> 0"]),
        ({"kind": "standardize", "mean": 0}, ["'std'", "required"]),
        ({"kind": "scale", "gain": float("nan")}, ["'gain'"]),
        ({"kind": "select", "channels": []}, ["'channels'"]),
        ({"kind": "select", "channels": [0, -1]}, ["'channels'[1]"]),
        ({"kind": "grid", "shape": [2, 2], "order": [0, 1, 2]}, ["'order'", "4 cells"]),
        ({"kind": "grid", "shape": [2, 2], "order": [0, 1, 1, -1]}, ["'order'", "more than once"]),
        ({"kind": "grid", "shape": [2, 2], "order": [0, 1, 2, -2]}, ["'order'[3]"]),
        ({"kind": "grid", "shape": [0, 2], "order": []}, ["'shape'"]),
        ({"kind": "clip"}, ["min_value", "max_value"]),
        ({"kind": "clip", "min_value": 2, "max_value": 1}, ["min_value", "max_value"]),
        ("rectify", ["stage 1", "mapping"]),
    ],
)
def test_invalid_spec_raises_config_error_naming_field(spec: Any, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_chain([{"kind": "rectify"}, spec])
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert "Fix:" in message
    assert info.value.exit_code == 2


def test_chain_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match="must be a list"):
        parse_chain({"kind": "rectify"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("specs", "rate_hz", "n_ch", "words"),
    [
        (
            [{"kind": "butter", "btype": "lowpass", "order": 4, "cutoff_hz": 600}],
            FS,
            N_CH,
            ["stage 0", "'butter'", "cutoff_hz", "Nyquist", "500"],
        ),
        (
            [{"kind": "butter", "btype": "bandpass", "order": 4, "cutoff_hz": [20, 500]}],
            FS,
            N_CH,
            ["stage 0", "cutoff_hz", "Nyquist"],
        ),
        (  # after decimation the same cut-off no longer fits: checked at that stage's rate
            [
                {"kind": "rectify"},
                {"kind": "decimate", "factor": 10},
                {"kind": "butter", "btype": "lowpass", "order": 2, "cutoff_hz": 80},
            ],
            FS,
            N_CH,
            ["stage 2", "'butter'", "cutoff_hz", "100 Hz", "50"],
        ),
        (
            [{"kind": "standardize", "mean": [0, 0, 0], "std": 1.0}],
            FS,
            N_CH,
            ["stage 0", "'standardize'", "'mean'", "3 values", "4 channels"],
        ),
        (
            [{"kind": "standardize", "mean": 0.0, "std": [1, 1, 1, 1, 1]}],
            FS,
            N_CH,
            ["'std'", "5 values"],
        ),
        (  # lengths are checked against the channels at that position of the chain
            [{"kind": "select", "channels": [0, 1]}, {"kind": "scale", "gain": [1, 2, 3, 4]}],
            FS,
            N_CH,
            ["stage 1", "'scale'", "'gain'", "2 channels"],
        ),
        ([{"kind": "select", "channels": [0, 4]}], FS, N_CH, ["'channels'", "[4]", "0..3"]),
        (
            [{"kind": "grid", "shape": [1, 5], "order": [0, 1, 2, 3, 7]}],
            FS,
            N_CH,
            ["'grid'", "'order'", "[7]"],
        ),
        ([{"kind": "rms", "window_s": 0.0004}], FS, N_CH, ["'window_s'", "one sample"]),
        (
            [{"kind": "smooth", "shape": "gaussian", "sigma_s": 0.0001}],
            FS,
            N_CH,
            ["'sigma_s'"],
        ),
        ([], 0.0, N_CH, ["rate"]),
        ([{"kind": "rectify"}], float("nan"), N_CH, ["rate"]),
        ([{"kind": "rectify"}], FS, 0, ["channel count"]),
    ],
)
def test_build_errors_name_stage_and_field(
    specs: list[dict[str, Any]], rate_hz: float, n_ch: int, words: list[str]
) -> None:
    with pytest.raises(StageError) as info:
        build_chain(specs, rate_hz, n_ch)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert "Fix:" in message


def test_specs_round_trip_through_json() -> None:
    x, t = _signal()
    chain = build_chain(ALL_KINDS, FS, N_CH)
    text = json.dumps(chain.specs)
    again = build_chain(json.loads(text), FS, N_CH)
    assert again.specs == chain.specs
    assert chains_equal(chain.specs, ALL_KINDS)
    y1, t1 = chain.process(x, t)
    y2, t2 = again.process(x, t)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(t1, t2)
    assert (again.rate_out_hz, again.n_out, again.delay_s) == (
        chain.rate_out_hz,
        chain.n_out,
        chain.delay_s,
    )
    # spec models work as input too
    third = build_chain(parse_chain(chain.specs), FS, N_CH)
    np.testing.assert_array_equal(third.process(x, t)[0], y1)


def test_chain_properties() -> None:
    chain = build_chain(ALL_KINDS, FS, N_CH)
    assert isinstance(chain, Chain) and len(chain) == len(ALL_KINDS)
    assert chain.rate_in_hz == FS and chain.n_in == N_CH
    assert chain.rate_out_hz == pytest.approx(FS / 10) and chain.n_out == 4
    assert chain.grid_shape == (2, 2)
    assert (
        chain.delay_s == pytest.approx(sum(s.delay_s for s in chain.stages)) and chain.delay_s > 0
    )
    assert "Chain([scale" in repr(chain)
    regrid = build_chain(ALL_KINDS + [{"kind": "select", "channels": [0, 1]}], FS, N_CH)
    assert regrid.grid_shape is None and regrid.n_out == 2
    assert build_chain(ALL_KINDS[:3], FS, N_CH).grid_shape is None


def test_spec_is_not_shared_with_caller() -> None:
    spec = {"kind": "scale", "gain": [1.0, 2.0, 3.0, 4.0]}
    model = parse_chain([spec])[0]
    chain = build_chain([model], FS, N_CH)
    model.gain[0] = 100.0  # type: ignore[union-attr,index]
    assert chain.specs[0]["gain"] == [1.0, 2.0, 3.0, 4.0]


def test_chains_equal_normalises() -> None:
    a = [
        {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45, 55]},
        {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
        {"kind": "decimate", "factor": 20},
    ]
    b = [
        ButterSpec(btype="bandstop", order=2, cutoff_hz=(45.0, 55.0)),
        {"kind": "rms", "shape": "gaussian", "window_s": 0.06},
        {"kind": "decimate", "factor": 20, "antialias": True},
    ]
    assert chains_equal(a, b)
    assert chains_equal(json.loads(json.dumps(build_chain(a, 2000.0, 2).specs)), a)
    assert chains_equal(build_chain(a, 2000.0, 2), b)
    assert chains_equal([], [])
    assert not chains_equal(a, a[:2])
    assert not chains_equal(a, [a[1], a[0], a[2]])
    assert not chains_equal(a, [*a[:2], {"kind": "decimate", "factor": 20, "antialias": False}])
    assert not chains_equal(a, [{**a[0], "order": 4}, *a[1:]])
    assert not chains_equal(a, [a[0], {"kind": "rms", "shape": "gaussian", "sigma_s": 0.011}, a[2]])
    with pytest.raises(ConfigError):
        chains_equal(a, [{"kind": "nope"}])


def test_process_rejects_wrong_shapes() -> None:
    chain = build_chain(ALL_KINDS[:2], FS, N_CH)
    x, t = _signal(10)
    with pytest.raises(StageError, match=r"expected \(n, 4\)"):
        chain.process(x[:, :3], t)
    with pytest.raises(StageError, match="one time stamp"):
        chain.process(x, t[:5])
    with pytest.raises(StageError):
        chain.process(x[:, 0], t)
    with pytest.raises(StageError):
        build_chain([], FS, N_CH).process(x[:, :2], t)


def test_chain_construction_checks() -> None:
    with pytest.raises(StageError, match="rate_hz and n_channels"):
        Chain([])
    a = build_chain([{"kind": "decimate", "factor": 2}], FS, N_CH).stages[0]
    b = build_chain([{"kind": "rectify"}], FS, N_CH).stages[0]  # expects 1000 Hz, gets 500
    with pytest.raises(StageError, match="stage 1"):
        Chain([a, b])
    with pytest.raises(StageError, match="channels"):
        Chain([b], rate_hz=FS, n_channels=3)
    chain = Chain([b, a])
    assert chain.rate_out_hz == FS / 2
    assert chain.specs == [
        {"kind": "rectify"},
        {"kind": "decimate", "factor": 2, "antialias": True},
    ]
