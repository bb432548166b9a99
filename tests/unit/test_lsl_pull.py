"""ChunkPuller (liblsl's C pull, arguments built once) against pylsl's own pull_chunk, on a real
outlet and inlet: the same samples and times, the cap, a timeout, integer formats, a lost
stream's error."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rtdecode.errors import SourceError
from rtdecode.lsl import pylsl
from rtdecode.sources.lsl_pull import ChunkPuller


def _pair(name: str, fmt: int, channels: int, source_id: str = "") -> tuple:
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", channels, 1000.0, fmt, source_id))
    found = pylsl.resolve_bypred(f"name='{name}'", 1, 10.0)
    assert found
    inlet = pylsl.StreamInlet(found[0], max_buflen=10)
    inlet.open_stream(10.0)
    time.sleep(0.2)
    return outlet, inlet


def _push(outlet: pylsl.StreamOutlet, x: np.ndarray, t0: float) -> np.ndarray:
    stamps = t0 + np.arange(x.shape[0]) / 1000.0
    for row, t in zip(x, stamps, strict=True):
        outlet.push_sample(row, float(t))
    return stamps


def _wait_for(inlet: pylsl.StreamInlet, n: int) -> None:
    end = time.monotonic() + 10.0
    while inlet.samples_available() < n and time.monotonic() < end:
        time.sleep(0.01)
    assert inlet.samples_available() >= n


def test_pulls_equal_what_was_pushed_in_order_up_to_the_cap(unique_name: str) -> None:
    outlet, inlet = _pair(unique_name, pylsl.cf_float32, 5)
    x = np.random.default_rng(0).standard_normal((70, 5)).astype(np.float32)
    stamps = _push(outlet, x, 1000.0)
    _wait_for(inlet, 70)
    puller = ChunkPuller(pylsl.cf_float32, np.zeros((64, 5), np.float32))
    got_x, got_t = [], []
    for cap in (1, 30, 64):  # 1 + 30 + the other 39
        t = puller.pull(inlet, 1.0, cap)
        assert t.size == min(cap, 70 - sum(map(len, got_t)))
        got_x.append(puller.data[: t.size].copy())
        got_t.append(t.copy())
    np.testing.assert_array_equal(np.concatenate(got_x), x)
    np.testing.assert_array_equal(np.concatenate(got_t), stamps)
    t0 = time.monotonic()
    assert puller.pull(inlet, 0.2, 64).size == 0  # nothing left: waits the timeout, pulls nothing
    assert 0.15 < time.monotonic() - t0 < 2.0


def test_integer_stream_and_pylsl_agree(unique_name: str) -> None:
    outlet, inlet = _pair(unique_name, pylsl.cf_int16, 3)
    x = np.arange(60, dtype=np.int16).reshape(20, 3) - 30
    stamps = _push(outlet, x, 50.0)
    _wait_for(inlet, 20)
    puller = ChunkPuller(pylsl.cf_int16, np.zeros((10, 3), np.int16))
    t = puller.pull(inlet, 1.0, 10)
    np.testing.assert_array_equal(puller.data[: t.size], x[:10])
    np.testing.assert_array_equal(t, stamps[:10])
    dest = np.zeros((10, 3), np.int16)  # the rest through pylsl: the same
    _, ts = inlet.pull_chunk(timeout=1.0, max_samples=10, dest_obj=dest, min_samples=1, as_numpy=True)
    np.testing.assert_array_equal(dest[: len(ts)], x[10 : 10 + len(ts)])


def test_a_lost_stream_raises_pylsls_lost_error(unique_name: str) -> None:
    outlet, inlet = _pair(unique_name, pylsl.cf_float32, 2)  # no source_id: not recoverable
    puller = ChunkPuller(pylsl.cf_float32, np.zeros((8, 2), np.float32))
    del outlet
    with pytest.raises(pylsl.util.LostError):
        end = time.monotonic() + 15.0
        while time.monotonic() < end:
            puller.pull(inlet, 0.2, 8)


def test_buffers_that_do_not_fit_are_refused() -> None:
    with pytest.raises(SourceError, match="not numeric"):
        ChunkPuller(pylsl.cf_string, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        ChunkPuller(pylsl.cf_float32, np.zeros((4, 2), np.float64))
    with pytest.raises(ValueError, match="does not fit"):
        ChunkPuller(pylsl.cf_float32, np.zeros((4, 4), np.float32)[:, :2])
