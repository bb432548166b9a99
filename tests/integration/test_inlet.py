"""The LSL inlet over real loopback LSL: checks at open, gap and index accounting, clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rtdecode.config import SourceConfig
from rtdecode.errors import SourceError
from rtdecode.lsl import pylsl
from rtdecode.sources.lsl_inlet import LslInlet


def _outlet(name: str, channels: int = 3, rate: float = 100.0, fmt: str = "float32"):  # noqa: ANN202
    return pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", channels, rate, fmt, name))


def _pull_all(inlet: LslInlet, n: int, timeout_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    xs, ts = [], []
    end = time.monotonic() + timeout_s
    got = 0
    while got < n and time.monotonic() < end:
        c = inlet.pull(0.2)
        if c is not None:
            xs.append(c.samples.copy())
            ts.append(c.t_lsl.copy())
            got += c.n
    return np.concatenate(xs), np.concatenate(ts)


def test_gaps_and_lost_index_samples_are_counted(unique_name: str) -> None:
    out = _outlet(unique_name)
    with LslInlet(SourceConfig(name=unique_name, channels=3, rate_hz=100.0, index_channel=0,
                               resolve_timeout_s=10)) as inlet:
        assert out.wait_for_consumers(10)
        t0 = pylsl.local_clock()
        idx = np.r_[0:50, 60:100]  # 10 samples never sent
        x = np.zeros((idx.size, 3), np.float32)
        x[:, 0] = idx
        stamps = (t0 + idx / 100.0).tolist()
        out.push_chunk(x[:50], stamps[:50])
        out.push_chunk(x[50:], stamps[50:])
        got, t = _pull_all(inlet, idx.size)
    assert got.shape == (90, 3)
    c = inlet.counters()
    assert c["gaps"] == 1 and c["missing_samples"] == 10
    assert c["index_lost"] == 10 and c["index_dup"] == 0
    np.testing.assert_allclose(t, t0 + idx / 100.0, atol=1e-3)  # clock-corrected, same host


def test_busy_poll_delivers_every_sample_in_order_and_times_out(unique_name: str) -> None:
    out = _outlet(unique_name)
    cfg = SourceConfig(name=unique_name, channels=3, rate_hz=100.0, index_channel=0, resolve_timeout_s=10,
                       busy_poll_s=0.02)
    with LslInlet(cfg) as inlet:
        assert out.wait_for_consumers(10)
        # nothing sent: the spin (20 ms) then the blocking rest of the wait, then None
        t0 = time.monotonic()
        assert inlet.pull(0.05) is None
        assert time.monotonic() - t0 >= 0.045
        # spin only (timeout shorter than busy_poll_s)
        assert inlet.pull(0.005) is None
        x = np.zeros((300, 3), np.float32)
        x[:, 0] = np.arange(300)
        for i in range(0, 300, 3):  # pushed while the inlet spins
            out.push_chunk(x[i:i + 3])
            time.sleep(0.001)
        got, _ = _pull_all(inlet, 300)
    np.testing.assert_array_equal(got[:, 0], np.arange(300))
    assert inlet.index_lost == 0 and inlet.index_dup == 0


def test_duplicate_index_counted(unique_name: str) -> None:
    out = _outlet(unique_name)
    with LslInlet(SourceConfig(name=unique_name, index_channel=0, resolve_timeout_s=10)) as inlet:
        assert out.wait_for_consumers(10)
        x = np.zeros((6, 3), np.float32)
        x[:, 0] = [0, 1, 2, 2, 3, 4]
        out.push_chunk(x)
        _pull_all(inlet, 6)
    assert inlet.index_dup == 1 and inlet.index_lost == 0


@pytest.mark.parametrize(("kw", "match"), [
    ({"channels": 4}, "3 channels, the config expects 4"),
    ({"rate_hz": 250.0}, "runs at 100 Hz"),
    ({"index_channel": 7}, "index_channel 7"),
])
def test_stream_that_does_not_match_the_config(unique_name: str, kw: dict, match: str) -> None:
    _o = _outlet(unique_name)
    with pytest.raises(SourceError, match=match):
        LslInlet(SourceConfig(name=unique_name, resolve_timeout_s=10, **kw)).open()


def test_string_stream_refused_and_missing_stream_named(unique_name: str) -> None:
    _o = _outlet(unique_name, channels=1, rate=0.0, fmt="string")
    with pytest.raises(SourceError, match="numeric streams only"):
        LslInlet(SourceConfig(name=unique_name, resolve_timeout_s=10)).open()
    with pytest.raises(SourceError, match="no LSL stream matching") as e:
        LslInlet(SourceConfig(name=unique_name + "-absent", resolve_timeout_s=0.5)).open()
    assert "Fix:" in str(e.value)


def test_double_stream_is_converted_to_float32(unique_name: str) -> None:
    out = _outlet(unique_name, fmt="double64")
    with LslInlet(SourceConfig(name=unique_name, resolve_timeout_s=10)) as inlet:
        assert out.wait_for_consumers(10)
        out.push_chunk(np.arange(30, dtype=np.float64).reshape(10, 3))
        x, _ = _pull_all(inlet, 10)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.ravel(), np.arange(30))
