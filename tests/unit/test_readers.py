"""Readers: generic formats round-trip; the shared datasets load with the documented layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from scipy import signal

from rtdecode.errors import DataError
from rtdecode.io import Recording, read_monkey_reach, read_recording, write_csv, write_npz
from rtdecode.io.datasets import flexemg_labels


def _rec(n: int = 500, c: int = 3, fs: float = 250.0, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    return Recording(x=rng.standard_normal((n, c)) * 50, fs=fs,
                     y=rng.standard_normal((n, 2)), channel_names=[f"c{i}" for i in range(c)],
                     target_names=["fx", "fy"], meta={"units": {"x": "uV"}})


# --------------------------------------------------------------------------- npz
def test_npz_round_trip(tmp_path: Path) -> None:
    rec = _rec()
    back = read_recording(write_npz(rec, tmp_path / "r.npz"))
    np.testing.assert_array_equal(back.x, rec.x)
    np.testing.assert_array_equal(back.y, rec.y)
    np.testing.assert_array_equal(back.t, rec.t)
    assert back.fs == rec.fs
    assert back.channel_names == rec.channel_names and back.target_names == rec.target_names
    assert back.meta["units"] == {"x": "uV"}


def test_npz_minimal_layout(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    np.savez(tmp_path / "m.npz", x=x, fs=100.0)
    rec = read_recording(tmp_path / "m.npz")
    assert rec.x.dtype == np.float32 and rec.x.shape == (20, 2) and rec.fs == 100.0
    assert rec.y is None and rec.channel_names == ["ch0", "ch1"]
    np.testing.assert_allclose(rec.t, np.arange(20) / 100.0)


def test_npz_timestamps_relative_and_fs_rules(tmp_path: Path) -> None:
    np.savez(tmp_path / "t.npz", x=np.zeros((5, 1)), t=np.arange(5) * 0.01 + 1000.0)
    with pytest.raises(DataError, match="no `fs`"):
        read_recording(tmp_path / "t.npz")
    rec = read_recording(tmp_path / "t.npz", fs=100.0)
    np.testing.assert_allclose(rec.t, np.arange(5) * 0.01, atol=1e-9)
    np.savez(tmp_path / "f.npz", x=np.zeros((5, 1)), fs=100.0)
    with pytest.raises(DataError, match="leave fs unset"):
        read_recording(tmp_path / "f.npz", fs=200.0)
    np.savez(tmp_path / "nox.npz", data=np.zeros((5, 1)), fs=100.0)
    with pytest.raises(DataError, match="no array `x`"):
        read_recording(tmp_path / "nox.npz")


# --------------------------------------------------------------------------- csv
def test_csv_round_trip(tmp_path: Path) -> None:
    rec = _rec()
    back = read_recording(write_csv(rec, tmp_path / "r.csv"))
    np.testing.assert_allclose(back.x, rec.x, rtol=1e-6)
    np.testing.assert_allclose(back.y, rec.y, rtol=1e-6)
    assert back.fs == pytest.approx(rec.fs, rel=1e-9)
    assert back.channel_names == rec.channel_names and back.target_names == rec.target_names


def test_csv_without_time_needs_fs(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("a,b,y_force\n1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(DataError, match="no `time`/`t` column"):
        read_recording(path)
    rec = read_recording(path, fs=50.0)
    assert rec.fs == 50.0 and rec.channel_names == ["a", "b"] and rec.target_names == ["force"]
    np.testing.assert_array_equal(rec.x, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(rec.y[:, 0], [3, 6, 9])


def test_csv_time_column_gives_rate(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    t = 5.0 + np.arange(100) / 512.0
    np.savetxt(path, np.column_stack([t, np.ones(100)]), delimiter=",", header="t,emg",
               comments="", fmt="%.12g")
    rec = read_recording(path)
    assert rec.fs == pytest.approx(512.0, rel=1e-6) and rec.n_channels == 1
    assert rec.t[0] == 0.0


def test_csv_bad_content(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,a\n0,1\n0.1,oops\n")
    with pytest.raises(DataError, match="non-numeric"):
        read_recording(path)


# --------------------------------------------------------------------------- errors
def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xdf"
    with pytest.raises(DataError, match="nowhere.xdf"):
        read_recording(missing)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "r.edf"
    path.write_bytes(b"0")
    with pytest.raises(DataError, match="unsupported recording format"):
        read_recording(path)


def test_corrupt_files_raise_data_error(tmp_path: Path) -> None:
    for suffix in (".npz", ".xdf", ".mat"):
        path = tmp_path / f"junk{suffix}"
        path.write_bytes(b"this is not a recording" * 10)
        with pytest.raises(DataError, match=f"junk{suffix}"):
            read_recording(path)


def test_unknown_mat_layout_lists_keys_and_layouts(tmp_path: Path) -> None:
    path = tmp_path / "other.mat"
    sio.savemat(path, {"signals": np.zeros((10, 2)), "rate": 1000})
    with pytest.raises(DataError) as info:
        read_recording(path)
    msg = str(info.value)
    assert "signals" in msg and "rate" in msg
    for layout in ("otb", "flexemg", "ninapro"):
        assert layout in msg


def test_flexemg_labels_layout() -> None:
    labels = flexemg_labels(np.array([3, 4, 2, 1]), 28000)
    assert (labels[:5000] == 0).all() and (labels[25000:] == 0).all()
    for j, cls in enumerate([3, 4, 2, 1]):
        assert (labels[5000 + 5000 * j:10000 + 5000 * j] == cls).all()


# --------------------------------------------------------------------------- shared data
def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_xdf_default_stream_and_markers(shared_data: Path) -> None:
    path = _need(shared_data / "openbci_forearm_emg_xdf" / "threeMotionTwo" / "test1.xdf")
    rec = read_recording(path)
    assert rec.x.shape == (23390, 8) and rec.fs == 250.0
    assert rec.meta["stream_name"] == "obci_eeg1" and rec.meta["stream_type"] == "EEG"
    # the recorded LSL timestamps are kept (not dejittered): the median step is 1/250 s,
    # and this OpenBCI recording's real jitter even steps backwards at times
    steps = np.diff(rec.t)
    assert rec.t[0] == 0.0 and np.median(steps) == pytest.approx(1 / 250.0, rel=0.01)
    assert (steps < 0).any()
    assert rec.meta["t0_lsl"] > 0
    times, labels = rec.meta["markers"]
    assert len(labels) == 48 == len(times) and labels[:2] == ["0s", "0e"]
    assert np.all(np.diff(times) >= 0)


def test_xdf_stream_selection(shared_data: Path) -> None:
    path = _need(shared_data / "openbci_forearm_emg_xdf" / "eightChannelTest" / "handTwo.xdf")
    assert read_recording(path, stream="obci_eeg1").n_samples == 11890
    assert read_recording(path, stream="EEG").n_channels == 8  # by type
    with pytest.raises(DataError, match="no stream named"):
        read_recording(path, stream="nope")


def test_openhdemg_otb(shared_data: Path) -> None:
    path = _need(shared_data / "openhdemg_otb_hdsemg_force" / "otb_testfile.mat")
    rec = read_recording(path)
    assert rec.x.shape == (66560, 64) and rec.fs == 2048.0
    assert rec.meta["grid_shape"] == (13, 5) and rec.meta["units"]["x"] == "uV"
    assert rec.target_names == ["force"]
    assert 0.5 < rec.y.min() < 1.5 and 25.0 < rec.y.max() < 30.0  # %MVC trapezoid
    assert 50 < float(rec.x[:, 0].std()) < 300  # µV
    assert [len(d) for d in rec.meta["mu_discharges"]] == [137, 154, 197, 293, 292]


def test_flexemg_trial(shared_data: Path) -> None:
    folder = _need(shared_data / "flexemg_hdsemg_gestures" / "data" / "001-Session1Train")
    rec = read_recording(folder / "001-001.mat")
    assert rec.x.shape == (28000, 64) and rec.fs == 1000.0
    assert rec.meta["grid_shape"] == (16, 4)
    assert sorted(rec.meta["arraymap"].ravel().tolist()) == list(range(1, 65))
    labels = rec.y[:, 0]
    seq = rec.meta["sequence"]
    assert sorted(seq) == [1, 2, 3, 4]
    assert (labels[:5000] == 0).all()
    for j, cls in enumerate(seq):
        assert (labels[5000 + 5000 * j:10000 + 5000 * j] == cls).all()
    # mV after removing the mean; band-passed RMS: rest ~0.004-0.009 mV, gestures 0.03-0.08
    assert np.abs(rec.x.mean(axis=0)).max() < 1e-3
    sos = signal.butter(4, (20, 450), btype="bandpass", fs=rec.fs, output="sos")
    f = signal.sosfiltfilt(sos, rec.x, axis=0)
    rest = float(np.sqrt(np.mean(f[1000:4000] ** 2)))
    assert 0.001 < rest < 0.015
    for j in range(4):
        assert float(np.sqrt(np.mean(f[6000 + 5000 * j:9000 + 5000 * j] ** 2))) > 2 * rest


def test_ninapro(shared_data: Path) -> None:
    rec = read_recording(_need(shared_data / "ninapro_db1_s1_e1" / "S1_A1_E1.mat"))
    assert rec.x.shape == (101014, 10) and rec.fs == 100.0
    assert rec.y.shape == (101014, 23) and rec.target_names[-1] == "restimulus"
    assert set(np.unique(rec.y[:, -1]).astype(int)) == set(range(13))


def test_myo(shared_data: Path) -> None:
    rec = read_recording(_need(shared_data / "myo_grasp_force" / "recording_force_v2.mat"))
    assert rec.n_channels == 8 and rec.fs == 200.0 and rec.y.shape == (rec.n_samples, 1)


def test_monkey_reach(shared_data: Path) -> None:
    folder = _need(shared_data / "bmi_monkeyreach_binned")
    rec = read_monkey_reach(folder)
    assert rec.x.shape == (14544, 98) and rec.fs == 50.0
    assert rec.target_names == ["px", "py", "vx", "vy"]
    trial = rec.meta["trial_id"]
    starts = rec.meta["trial_starts"]
    assert len(starts) == len(np.unique(trial)) == 640
    assert (rec.y[starts, 2:] == 0).all()
    # velocity is the within-trial backward difference of position
    k = starts[1] + 3
    np.testing.assert_allclose(rec.y[k, 2:], (rec.y[k, :2] - rec.y[k - 1, :2]) * 50.0,
                               rtol=1e-4, atol=1e-3)
    assert set(np.unique(rec.meta["direction"])) == set(range(1, 9))
    # read_recording dispatches on the folder
    assert read_recording(folder).n_samples == rec.n_samples
