"""MEP measurement, the sample ring, markers and trigger edges (no LSL)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from rtdecode.errors import ConfigError
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.tms.config import MeasureConfig, TmsConfig, TriggerConfig
from rtdecode.tms.events import MarkerParser, TriggerDetector
from rtdecode.tms.measure import MepMeasurer, extract_epoch, measure_recording
from rtdecode.tms.ring import SampleRing
from rtdecode.types import Flags

FS = 2000.0


def _epoch(m: MepMeasurer, n_ch: int, seed: int = 0, noise_uv: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m.length, n_ch)) * noise_uv + 300.0).astype(np.float32)


def _wave(m: MepMeasurer, x: np.ndarray, ch: int, onset_ms: float, p2p: float) -> None:
    """Add a biphasic MEP of peak to peak ``p2p`` starting ``onset_ms`` after the pulse."""
    k = m.n_before + int(round(onset_ms * FS / 1e3))
    u = np.arange(24) / 24.0
    w = np.sin(2 * np.pi * u) * np.sin(np.pi * u)
    x[k:k + 24, ch] += (w / (w.max() - w.min()) * p2p).astype(np.float32)


def test_measures_of_a_known_response() -> None:
    m = MepMeasurer(MeasureConfig(), FS, 3, 1.0)
    x = _epoch(m, 3)
    _wave(m, x, 0, 22.0, 1000.0)
    _wave(m, x, 1, 21.0, 30.0)  # below the 50 µV response threshold
    x[m.n_before:m.n_before + 4] += 5000.0  # stimulus artefact, blanked
    r = m.measure(x, 12.5)
    assert r.values.dtype == np.float32 and r.t_last == 12.5
    assert abs(r.values[0, 0] - 1000.0) < 40.0  # p2p within the background noise
    assert 22.0 <= r.values[0, 1] <= 24.0  # onset: first sample above 5 x RMS
    assert r.values[0, 2] > 1000.0 * 0.1  # µV·ms of a 12-ms wave of ±500 µV
    assert 3.0 < r.values[0, 3] < 7.0  # background RMS ~5 µV, offset removed
    assert r.channel_flags[1] & EventFlags.NO_RESPONSE and r.values[1, 1] == 0.0
    assert not r.channel_flags[0] & EventFlags.NO_RESPONSE
    assert r.values[2, 0] < 50.0  # the artefact does not reach the post window
    assert r.flags & EventFlags.NO_RESPONSE and not r.flags & EventFlags.PREACTIVATED


def test_preactivation_is_flagged_per_channel() -> None:
    m = MepMeasurer(MeasureConfig(preactivation_uv=50.0), FS, 2, 1.0)
    x = _epoch(m, 2)
    x[: m.n_before, 1] += np.random.default_rng(1).standard_normal(m.n_before).astype(np.float32) * 120
    r = m.measure(x, 0.0)
    assert r.channel_flags[1] & EventFlags.PREACTIVATED and not r.channel_flags[0] & EventFlags.PREACTIVATED
    assert r.flags & EventFlags.PREACTIVATED and r.values[1, 3] > 50.0


def test_units_and_nonfinite_input() -> None:
    m = MepMeasurer(MeasureConfig(), FS, 1, 1e3)  # stream in mV
    x = _epoch(m, 1, noise_uv=0.005)
    _wave(m, x, 0, 22.0, 1.0)  # 1 mV
    x[m.n_before + 5] = np.nan
    r = m.measure(x, 0.0)
    assert abs(r.values[0, 0] - 1000.0) < 50.0
    assert r.flags & Flags.BAD_INPUT and np.isfinite(r.values).all()


def test_windows_and_chain_checks() -> None:
    with pytest.raises(ValidationError, match="post_ms"):
        MeasureConfig(post_ms=(50.0, 20.0))
    with pytest.raises(ValidationError, match="blank_ms"):
        MeasureConfig(blank_ms=(-1.0, 30.0))
    with pytest.raises(ConfigError, match="changes the rate"):
        MepMeasurer(MeasureConfig(chain=[{"kind": "decimate", "factor": 2}]), FS, 1, 1.0)
    with pytest.raises(ConfigError, match="tms.measure.chain"):
        MepMeasurer(MeasureConfig(chain=[{"kind": "butter", "btype": "lowpass", "order": 2,
                                          "cutoff_hz": 5000}]), FS, 1, 1.0)
    with pytest.raises(ValidationError, match="exactly one"):
        TmsConfig()
    with pytest.raises(ValidationError, match="buffer_s"):
        TmsConfig(markers={"name": "m"}, buffer_s=0.2)


def test_ring_wraps_and_reads_back_any_chunking() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 2)).astype(np.float32)
    t = np.arange(1000) / FS
    ring = SampleRing(300, 2)
    i = 0
    while i < 1000:
        n = int(rng.integers(1, 40))
        ring.write(x[i:i + n], t[i:i + n], Flags.GAP if i == 500 else 0)
        i += n
    assert ring.first == 700 and ring.n_written == 1000 and ring.newest_t == t[-1]
    out_x, out_t = np.empty((250, 2), np.float32), np.empty(250)
    assert ring.read(720, out_x, out_t) == 0
    np.testing.assert_array_equal(out_x, x[720:970])
    assert ring.nearest(t[800] + 0.4 / FS) == 800 and ring.nearest(t[800] + 0.6 / FS) == 801
    assert ring.nearest(99.0) == 1000
    big = SampleRing(300, 2)
    big.write(x, t)  # more than the capacity at once keeps the last 300
    np.testing.assert_array_equal(big.x[np.arange(700, 1000) % 300], x[700:])


def test_extract_finds_outages_and_waits() -> None:
    m = MepMeasurer(MeasureConfig(), FS, 1, 1.0)
    t = np.arange(4000) / FS
    t[2100:] += 0.5  # samples missing after 1.05 s
    x = np.zeros((4000, 1), np.float32)
    ring = SampleRing(4000, 1)
    ring.write(x[:2000], t[:2000])
    ex, et = np.empty((m.length, 1), np.float32), np.empty(m.length)
    assert extract_epoch(ring, m, 0.5, 3.0, ex, et) == ("ready", 0)
    assert extract_epoch(ring, m, 0.99, 3.0, ex, et)[0] == "wait"
    assert extract_epoch(ring, m, 0.01, 3.0, ex, et)[0] == "gone"
    ring.write(x[2000:], t[2000:])
    state, flags = extract_epoch(ring, m, 1.03, 3.0, ex, et)
    assert state == "ready" and flags & EventFlags.OUTAGE and flags & Flags.GAP
    res = measure_recording(x, t, np.array([0.5, 1.03, 0.01]), m)
    assert not res[0].flags & EventFlags.OUTAGE and res[1].flags & EventFlags.OUTAGE
    assert res[2].flags & EventFlags.NO_SAMPLES and not res[2].values.any()


def test_marker_parser() -> None:
    p = MarkerParser(accept=["TMS", "1"])
    a = p.parse(json.dumps({"pulse": 5, "intensity": 120, "unit": "%RMT",
                            "coil": {"position_mm": [1, 2, 3], "normal": [0, 0, 1]}}), 10.0)
    assert a is not None and (a.pulse_id, a.t, a.intensity, a.unit) == (5, 10.0, 120.0, "%RMT")
    assert a.coil is not None and a.coil.position_mm == (1.0, 2.0, 3.0) and a.coil.direction is None
    b = p.parse("TMS", 11.0)
    assert b is not None and b.pulse_id == 6 and b.intensity == 0.0 and b.unit == ""
    assert p.parse(1.0, 12.0) is not None  # numeric marker "1"
    assert p.parse("start block", 13.0) is None and p.ignored == 1
    c = p.parse(json.dumps({"intensity": "high", "unit": "T", "coil": 3}), 14.0)
    assert c is not None and c.intensity == 0.0 and c.coil is None and p.field_errors == 2
    d = p.parse(json.dumps({"intensity": 50, "unit": "T"}), 15.0)
    assert d is not None and d.intensity == 50.0 and d.unit == "" and p.field_errors == 3
    assert math.isnan(d.t_received)


@pytest.mark.parametrize("edge", ["rising", "falling"])
def test_trigger_edges_are_chunk_invariant(edge: str) -> None:
    n = 6000
    x = np.zeros((n, 2), np.float32)
    sign = 1.0 if edge == "rising" else -1.0
    for k in (500, 530, 2000, 4100):  # 530: inside the 50-ms refractory period of 500
        x[k:k + 4, 1] = sign * 5.0
    t = 100.0 + np.arange(n) / FS
    cfg = TriggerConfig(channel=1, threshold=sign * 2.5, edge=edge)
    whole = TriggerDetector(cfg, 1).step(x, t)
    assert whole == [t[500], t[2000], t[4100]]
    det = TriggerDetector(cfg, 1)
    rng = np.random.default_rng(0)
    got, i = [], 0
    while i < n:
        k = int(rng.integers(1, 9))
        got += det.step(x[i:i + k], t[i:i + k])
        i += k
    assert got == whole


def test_service_config_with_a_tms_section() -> None:
    from rtdecode.config import load_config

    cfg = load_config(data={"source": {"name": "emg"}, "tms": {"markers": {"name": "m"}}}, environ={})
    assert cfg.decoders == [] and cfg.tms is not None and cfg.tms.topic == "tms"
    with pytest.raises(ConfigError, match="nothing to serve"):
        load_config(data={"source": {"name": "emg"}, "decoders": []}, environ={})
    with pytest.raises(ConfigError, match="tms.markers"):
        load_config(data={"source": {"name": "emg"}, "tms": {"markers": {}}}, environ={})
