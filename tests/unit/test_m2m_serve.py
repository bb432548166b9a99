"""The M2M-Net serving pieces: stimulus from a marker, the running NRMSE, prediction events."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rtdecode.errors import ProtocolError
from rtdecode.metrics import nrmse
from rtdecode.sinks.event_payload import MEASURES, PREDICTION_MEASURES, EventFlags
from rtdecode.sinks.protocol import EventEncoder, decode
from rtdecode.tms.events import MarkerParser
from rtdecode.tms.m2m_serve import RunningNrmse, pulse_stimulus

COIL = {"position_mm": [2.0, 3.0, 90.0], "normal": [0, 0, 1], "direction": [0.7071, 0.7071, 0]}


def _pulse(**fields: object):
    p = MarkerParser().parse(json.dumps(fields), 1.0)
    assert p is not None
    return p


def test_stimulus_from_markers() -> None:
    pose, mso = pulse_stimulus(_pulse(intensity=50, unit="%MSO", coil=COIL), None)  # type: ignore[misc]
    assert mso == 50.0
    np.testing.assert_allclose(pose.center, [0.002, 0.003, 0.090])
    # %RMT: the marker's own intensity_mso wins, else the configured threshold
    assert pulse_stimulus(_pulse(intensity=120, unit="%RMT", intensity_mso=47.6, coil=COIL), 40.0)[1] == 47.6  # type: ignore[index]
    assert pulse_stimulus(_pulse(intensity=120, unit="%RMT", coil=COIL), 40.0)[1] == pytest.approx(48.0)  # type: ignore[index]
    assert pulse_stimulus(_pulse(intensity=120, unit="%RMT", coil=COIL), None) is None
    assert pulse_stimulus(_pulse(intensity=50, unit="%MSO"), None) is None  # no coil
    assert pulse_stimulus(_pulse(intensity=50, unit="%MSO", coil={"position_mm": [0, 0, 90]}), None) is None
    assert pulse_stimulus(_pulse(coil=COIL), None) is None  # no intensity
    bad = dict(COIL, normal=[0, 0, 0])
    assert pulse_stimulus(_pulse(intensity=50, unit="%MSO", coil=bad), None) is None


def test_running_nrmse_is_eq7_over_the_pulses_so_far() -> None:
    lo, hi = np.array([0.0, 10.0]), np.array([100.0, 210.0])
    r = RunningNrmse(lo, hi)
    assert r.value == -1.0
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 200, (20, 2))
    p = m + rng.normal(0, 20, m.shape)
    for a, b in zip(m, p, strict=True):
        r.add(a, b)
    span = hi - lo
    assert r.value == pytest.approx(nrmse((m - lo) / span, (p - lo) / span))
    first = nrmse((m[:, :1] - lo[0]) / span[0], (p[:, :1] - lo[0]) / span[0])
    assert r.per_muscle()[0] == pytest.approx(first)


def test_prediction_events_round_trip_with_their_measure_names() -> None:
    flags = int(EventFlags.PREDICTION)
    pred = EventEncoder("m2m", 3, 1).encode(0, flags, 1.0, 1.1, pulse_id=7, t_pulse=1.0,
                                            values=np.array([[10.0], [20.0], [30.0]]),
                                            channel_flags=np.full(3, flags, np.uint32),
                                            window_ms=(20.0, 50.0))
    m = decode(bytes(pred))
    assert m.event is not None and m.event.measures == PREDICTION_MEASURES and m.flags & EventFlags.PREDICTION
    np.testing.assert_array_equal(m.event.measure("pred_p2p_uv"), [10, 20, 30])
    with pytest.raises(ProtocolError, match="running_nrmse"):
        m.event.measure("running_nrmse")  # K = 1: only the prediction is in yet
    vals = np.array([[10.0, 12.0, 2.0, 0.5], [20.0, 18.0, -2.0, 0.5], [30.0, 30.0, 0.0, 0.5]])
    pair = decode(bytes(EventEncoder("m2m", 3, 4).encode(
        1, flags, 1.06, 1.2, pulse_id=7, t_pulse=1.0, values=vals,
        channel_flags=np.full(3, flags, np.uint32), window_ms=(20.0, 50.0))))
    assert pair.event is not None and pair.event.pulse_id == 7
    np.testing.assert_array_equal(pair.event.measure("error_uv"), [2, -2, 0])
    assert math.isclose(float(pair.event.measure("running_nrmse")[0]), 0.5)
    plain = decode(bytes(EventEncoder("tms", 3, 4).encode(
        0, 0, 1.0, 1.1, pulse_id=7, t_pulse=1.0, values=vals, channel_flags=np.zeros(3, np.uint32),
        window_ms=(20.0, 50.0))))
    assert plain.event is not None and plain.event.measures == MEASURES
    with pytest.raises(ProtocolError, match="PREDICTION_MEASURES"):
        plain.event.measure("pred_p2p_uv")


def test_listen_shows_prediction_events() -> None:
    from rtdecode.commands.listen import format_pulse

    flags = int(EventFlags.PREDICTION)
    lines = []
    for k in (1, 4):
        vals = np.tile(np.array([[100.0, 120.0, 20.0, 0.4]])[:, :k], (2, 1))
        frame = EventEncoder("m2m", 2, k).encode(0, flags, 1.0, 1.1, pulse_id=3, t_pulse=1.0, values=vals,
                                                 channel_flags=np.full(2, flags, np.uint32),
                                                 window_ms=(20.0, 50.0))
        lines.append(format_pulse(decode(bytes(frame)), ["FDI", "APB"]))
    assert lines[0] == "pulse 3 [PREDICTION] FDI 100uV predicted APB 100uV predicted"
    assert lines[1] == "pulse 3 running NRMSE 0.400 [PREDICTION] FDI 100/120uV APB 100/120uV"
