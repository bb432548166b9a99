"""`rtdecode tms measure|curves` and `rtdecode listen`'s pulse line, on real files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from rtdecode.cli import main
from rtdecode.commands.listen import _event_labels, format_pulse
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.sinks.protocol import EventEncoder, decode

FOLDER = "tms_mep/oxford_fdi_io"


@pytest.mark.data
def test_measure_command_writes_one_row_per_pulse(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / FOLDER / "S3_Magstim_44percent.mat"
    out = tmp_path / "pulses.csv"
    assert main(["tms", "measure", str(path), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    traces = sio.loadmat(path)["Values"].astype(np.float32)
    direct = (traces[1200:1501].max(0).astype(np.float64) - traces[1200:1501].min(0)) * 1e3
    assert [int(r["pulse"]) for r in rows] == list(range(15))
    np.testing.assert_allclose([float(r["FDI_p2p_uv"]) for r in rows], direct, rtol=1e-4)
    assert {r["intensity"] for r in rows} == {"44.0"} and rows[0]["unit"] == "%MSO"


@pytest.mark.data
def test_curves_command_fits_and_plots(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves"
    assert main(["tms", "curves", str(shared_data / FOLDER), "--subjects", "S3", "--out-dir",
                 str(out)]) == 0
    fit = json.loads((out / "curves.json").read_text())["S3"]
    assert fit["n_pulses"] == 105 and fit["n_intensities"] == 7 and fit["unit"] == "%MSO"
    assert 32.0 <= fit["i50"] <= 56.0 and fit["r2"] > 0.3
    assert (out / "curves.png").stat().st_size > 10_000


def test_listen_shows_a_pulse_with_its_channel_labels() -> None:
    values = np.array([[1593.0, 24.0, 9000.0, 4.0], [30.0, 0.0, 100.0, 3.0], [400.0, 22.5, 1.0, 90.0]])
    flags = np.array([0, EventFlags.NO_RESPONSE, EventFlags.PREACTIVATED])
    frame = bytes(EventEncoder("tms", 3).encode(0, EventFlags.PREACTIVATED | EventFlags.NO_RESPONSE,
                                                 2.0, 2.1, pulse_id=3, t_pulse=1.9, values=values,
                                                 channel_flags=flags, window_ms=(20, 50),
                                                 intensity=130, intensity_unit="%RMT"))
    msg = decode(frame)
    labels = _event_labels({"tms": {"topic": "tms", "channels": ["FDI", "APB", "BIC"]}}, "tms")
    line = format_pulse(msg, labels)
    assert line == ("pulse 3 130%RMT [PREACTIVATED|NO_RESPONSE] FDI 1593uV@24.0ms APB 30uV "
                    "BIC 400uV@22.5ms(pre)")
    assert format_pulse(msg).startswith("pulse 3 130%RMT") and "ch0 1593uV" in format_pulse(msg)
