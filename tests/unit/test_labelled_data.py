"""Any recording → a labelled set: marker events → classes and trials, target columns, trial rules,
the shared datasets as presets of the same path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rtdecode.errors import DataError
from rtdecode.io.events import (
    MarkerLabels,
    class_map,
    event_trials,
    find_events,
    guess_marker_labels,
    label_samples,
)
from rtdecode.io.labelled import DataSpec, load_labelled

MARKERS = (np.array([1.0, 2.0, 3.0, 4.5, 5.0, 6.0, 7.0]), ["0s", "0e", "1s", "1e", "junk", "0s", "0e"])


def test_start_end_pairs_label_the_samples_and_rest_fills_the_gaps() -> None:
    spec = MarkerLabels(start="{}s", end="{}e", classes={"0": "fist", "1": "open"})
    events = find_events(MARKERS, spec)
    assert [(e.start, e.end, e.label) for e in events] == [(1.0, 2.0, "0"), (3.0, 4.5, "1"), (6.0, 7.0, "0")]
    names, index = class_map([e.label for e in events], spec)
    assert names == ["rest", "fist", "open"] and index == {"0": 1, "1": 2}
    t = np.arange(0, 8, 0.5)
    lab = label_samples(t, events, index, spec)
    np.testing.assert_array_equal(lab.y, [0, 0, 1, 1, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 0, 0])
    assert lab.keep.all()


def test_offset_guard_and_onset_duration() -> None:
    spec = MarkerLabels(start="{}s", duration_s=0.5, offset_s=0.5, guard_s=0.5, classes={"0": "a", "1": "b"})
    events = find_events(MARKERS, spec)
    assert [(e.start, e.end) for e in events] == [(1.5, 2.0), (3.5, 4.0), (6.5, 7.0)]
    names, index = class_map([e.label for e in events], spec)
    t = np.arange(0, 8, 0.5)
    lab = label_samples(t, events, index, spec)
    # rest samples within 0.5 s of an event are left out; event samples are kept
    assert list(lab.keep[:6]) == [True, True, False, True, False, True]
    assert lab.y[3] == 1 and lab.y[7] == 2


def test_classes_may_merge_into_rest_and_unknown_labels_are_left_out() -> None:
    spec = MarkerLabels(start="{}s", end="{}e", classes={"1": "open", "0": "rest"})
    names, index = class_map(["0", "1", "2"], spec)
    assert names == ["rest", "open"] and index == {"1": 1, "0": 0}
    names, index = class_map(["0", "1"], spec, known=["rest", "fist", "open"])
    assert index == {"1": 2, "0": 0}


def test_markers_that_match_nothing_name_what_was_seen() -> None:
    with pytest.raises(DataError, match="'junk'"):
        find_events(MARKERS, MarkerLabels(start="start_{}", end="end_{}"))
    with pytest.raises(ValidationError, match="exactly one of"):
        MarkerLabels(start="{}s")
    with pytest.raises(ValidationError, match="once"):
        MarkerLabels(start="s", end="{}e")


def test_event_trials_group_each_event_with_the_rest_before_it() -> None:
    events = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    t = np.arange(0, 10, 1.0)
    np.testing.assert_array_equal(event_trials(t, events, 1), [1, 1, 2, 2, 3, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(event_trials(t, events, 2), [1, 1, 1, 1, 2, 2, 2, 2, 2, 2])


def test_guess_finds_start_end_suffixes_or_falls_back_to_onsets() -> None:
    g = guess_marker_labels(MARKERS[0][:4], ["0s", "0e", "1s", "1e"])
    assert g is not None and (g.start, g.end) == ("{}s", "{}e")
    g = guess_marker_labels(np.array([0.0, 2.0, 4.0]), ["fist", "open", "fist"])
    assert g is not None and g.end is None and g.duration_s == 1.0
    assert guess_marker_labels(np.zeros(0), []) is None


def _npz(path: Path, n: int = 400, trial: np.ndarray | None = None) -> Path:
    arrays = {"x": np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32), "fs": 100.0,
              "y": np.arange(n, dtype=np.float32), "target_names": np.array(["pos"]),
              "meta_json": json.dumps({"units": {"pos": "mm"}})}
    if trial is not None:
        arrays["trial"] = trial
    np.savez(path, **arrays)
    return path


def test_trial_rules_files_ids_and_blocks(tmp_path: Path) -> None:
    one = _npz(tmp_path / "a.npz", trial=np.repeat([4, 5], 200))
    ls = load_labelled(DataSpec(path=one))
    np.testing.assert_array_equal(np.unique(ls.trials[0]), [4, 5])  # ids stored in the file
    ls = load_labelled(DataSpec(path=one, trials="blocks", trial_block_s=1.0))
    np.testing.assert_array_equal(np.unique(ls.trials[0]), [1, 2, 3, 4])
    folder = tmp_path / "session"
    folder.mkdir()
    for i in range(3):
        _npz(folder / f"t{i}.npz")
    (folder / "notes.txt").write_text("not a recording")
    ls = load_labelled(DataSpec(path=folder))
    assert [int(t[0]) for t in ls.trials] == [1, 2, 3] and [f.name for f in ls.files] == ["t0.npz", "t1.npz",
                                                                                       "t2.npz"]
    with pytest.raises(DataError, match="trial_block_s"):
        load_labelled(DataSpec(path=_npz(tmp_path / "b.npz")))


def test_csv_target_columns_are_regression_targets(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    rows = "\n".join(f"{i / 50},{np.sin(i)},{i % 7},{i * 0.1}" for i in range(200))
    p.write_text("time,c0,c1,y_force\n" + rows + "\n")
    ls = load_labelled(DataSpec(path=p, trial_block_s=1.0))
    rec = ls.recordings[0]
    assert rec.target_names == ["force"] and rec.n_channels == 2 and len(np.unique(ls.trials[0])) == 4


@pytest.mark.data
def test_xdf_markers_become_classes_and_trials(shared_data: Path) -> None:
    path = shared_data / "openbci_forearm_emg_xdf" / "threeMotionTwo" / "test1.xdf"
    classes = {"0": "snap", "1": "squeeze", "2": "tap", "3": "rest"}
    markers = MarkerLabels(start="{}s", end="{}e", classes=classes)
    spec = DataSpec(path=path, markers=markers, events_per_trial=4)
    ls = load_labelled(spec)
    rec = ls.recordings[0]
    assert ls.class_names == ["rest", "snap", "squeeze", "tap"]
    assert rec.meta["events"].shape == (24, 2)  # 6 rounds of 4 gestures
    assert len(np.unique(ls.trials[0])) == 6
    y = rec.y[:, 0].astype(int)
    assert set(np.unique(y)) == {0, 1, 2, 3}
    inside = (rec.t >= rec.meta["events"][0, 0]) & (rec.t < rec.meta["events"][0, 1])
    assert (y[inside] == 1).all()  # the first event is '0' = snap


@pytest.mark.data
def test_shared_dataset_presets_read_through_the_generic_path(shared_data: Path) -> None:
    flex = load_labelled(DataSpec(kind="flexemg", path=shared_data / "flexemg_hdsemg_gestures" / "data" /
                                  "001-Session1Train", max_trials=3))
    assert flex.class_names == ["Rest", "Fist", "Raise", "Lower", "Open"]
    assert [int(t[0]) for t in flex.trials] == [1, 2, 3]  # one trial per file; arraymap.mat skipped
    monkey = load_labelled(DataSpec(kind="monkey_reach", path=shared_data / "bmi_monkeyreach_binned"))
    assert len(np.unique(monkey.trials[0])) == 640
    assert monkey.recordings[0].target_names == ["px", "py", "vx", "vy"]
