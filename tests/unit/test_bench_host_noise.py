"""The host-noise benchmark's analysis: slow windows of the probe, stalls, their attribution."""

from __future__ import annotations

import numpy as np

from bench.host_noise import attribution, slow_windows, stalls, summary


def _rows() -> np.ndarray:
    """10 s of probe iterations every 2.5 ms at 0.25 ms, 12x slower in [2.00, 2.08] and [5.00, 5.05] s."""
    t = np.arange(0.0, 10.0, 0.0025)
    d = np.full(t.size, 0.25e-3)
    d[((t >= 2.0) & (t <= 2.08)) | ((t >= 5.0) & (t <= 5.05))] = 3e-3
    return np.column_stack([t, d])


def test_slow_windows_are_grouped_and_measured() -> None:
    win = slow_windows(_rows())
    assert len(win) == 2
    (a0, b0, s0), (a1, b1, s1) = win
    assert abs(a0 - 2.0) < 1e-9 and abs(b0 - 2.083) < 1e-3 and abs(s0 - 12.0) < 1e-6
    assert abs(a1 - 5.0) < 1e-9 and abs(b1 - 5.053) < 1e-3
    s = summary(_rows())["slow_windows"]
    assert s["count"] == 2 and abs(s["interval_s_p50"] - 3.0) < 1e-6
    assert abs(s["time_share"] - (0.083 + 0.053) / 10.0) < 1e-3


def test_stalls_group_late_messages_and_count_coincidences() -> None:
    t_recv = np.arange(0.5, 9.5, 0.02)
    e2e = np.full(t_recv.size, 0.001)
    late_a = (t_recv > 2.05) & (t_recv < 2.1)  # right after the first slow window
    late_b = (t_recv > 7.5) & (t_recv < 7.55)  # no slow window near it
    e2e[late_a | late_b] = 0.03
    st = stalls(t_recv, e2e, 15.0)
    assert len(st) == 2 and st[0][0] < 2.05 < st[0][1] and st[1][0] < 7.5 < st[1][1]
    a = attribution(_rows(), t_recv, e2e, 15.0)
    assert a["stalls"] == 2 and a["coinciding"] == 1 and a["share"] == 0.5
    assert a["random_window_share"] < 0.2  # two short windows in 10 s
