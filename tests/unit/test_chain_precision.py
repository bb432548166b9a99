"""How a chain runs long chunks (in cache-sized blocks) and in float32 (the ``precision`` of the
``car`` and ``butter`` stages, the iBCI front end's default): the same output as float64 up to
float32 rounding, chunk-invariant, and float32 inside."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtdecode.dsp import build_chain, parse_chain
from rtdecode.dsp.base import Stage
from rtdecode.dsp.chain import Chain
from rtdecode.errors import ConfigError
from rtdecode.ibci.frontend import frontend_chain
from rtdecode.sources.broadband import BroadbandSimulator

FS = 30000.0


def _broadband(channels: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sim = BroadbandSimulator(channels, FS, seed=seed)
    sim.generate(1500)  # the units are firing
    x, _ = sim.generate(n)
    return np.ascontiguousarray(x, np.float32), np.arange(n) / FS


class _Widest(Stage):
    """A pass-through stage that records the longest chunk it was given."""

    def __init__(self, n: int) -> None:
        self.rate_in_hz = self.rate_out_hz = FS
        self.n_in = self.n_out = n
        self.longest = 0

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.longest = max(self.longest, x.shape[0])
        return x, t

    def reset(self) -> None:
        self.longest = 0


def test_a_long_chunk_runs_in_blocks_with_the_same_output() -> None:
    x, t = _broadband(1024, 1000)
    chain = build_chain(frontend_chain(10.0, bin_s=0.001, precision="float64"), FS, 1024)
    assert chain.block_rows == 32  # 256 KiB of float64 samples
    spy = _Widest(1024)
    blocked = Chain([spy, *build_chain(frontend_chain(10.0, bin_s=0.001, precision="float64"),
                                       FS, 1024).stages])
    y, ty = blocked.process(x, t)
    assert spy.longest == 32
    ticks = [chain.process(x[i:i + 30], t[i:i + 30]) for i in range(0, 1000, 30)]
    np.testing.assert_array_equal(ty, np.concatenate([p[1] for p in ticks]))
    np.testing.assert_allclose(y, np.concatenate([p[0] for p in ticks]), rtol=1e-6)
    assert y.shape == (33, 2048) and y[:, :1024].sum() > 0  # crossings happen
    # a narrow chain keeps longer pieces
    assert build_chain(frontend_chain(10.0, precision="float64"), FS, 16).block_rows == 1024


def test_float32_front_end_computes_in_float32_and_matches_float64() -> None:
    x, t = _broadband(64, 30000, seed=1)
    rms = [10.0] * 64
    c32 = build_chain(frontend_chain(rms), FS, 64)  # the default precision
    c64 = build_chain(frontend_chain(rms, precision="float64"), FS, 64)
    car, butter, feats = build_chain(frontend_chain(rms), FS, 64).stages
    assert c32.dtype == car.dtype == butter.dtype == np.float32 and feats.dtype is None
    assert c64.dtype == np.float64
    band = butter._step(car._step(x[:30], t[:30])[0], t[:30])[0]
    assert band.dtype == np.float32
    y32, t32 = c32.process(x, t)
    y64, t64 = c64.process(x, t)
    np.testing.assert_array_equal(t32, t64)
    assert y64[:, :64].sum() > 100  # crossings happen
    np.testing.assert_array_equal(y32[:, :64], y64[:, :64])
    # float32 filter state: the power within 1e-4 relative (measured: at most 4.7e-5, median 3e-7)
    np.testing.assert_allclose(y32[:, 64:], y64[:, 64:], rtol=1e-4)
    assert not np.array_equal(y32[:, 64:], y64[:, 64:])  # float32 arithmetic was used


def test_float32_front_end_is_chunk_invariant() -> None:
    x, t = _broadband(32, 12000, seed=2)
    specs = frontend_chain([10.0] * 32, bin_s=0.01)
    one, _ = build_chain(specs, FS, 32).process(x, t)
    chain = build_chain(specs, FS, 32)
    rng = np.random.default_rng(0)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 700))
        parts.append(chain.process(x[i:i + n], t[i:i + n])[0])
        i += n
    y = np.concatenate(parts)
    np.testing.assert_array_equal(y[:, :32], one[:, :32])
    # each chunk length has its own float32 chunk map: the power agrees to float32 rounding
    np.testing.assert_allclose(y[:, 32:], one[:, 32:], rtol=1e-4)


def test_precision_round_trips_and_a_bad_value_names_the_field() -> None:
    specs = frontend_chain([5.0, 6.0, 7.0])
    chain = build_chain(specs, FS, 3)
    again = build_chain(json.loads(json.dumps(chain.specs)), FS, 3)
    assert [s.get("precision") for s in again.specs[:2]] == ["float32", "float32"]
    assert again.dtype == np.float32
    with pytest.raises(ConfigError) as info:
        parse_chain([{"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": 300.0,
                      "precision": "float16"}])
    assert "precision" in str(info.value) and "Fix:" in str(info.value)
