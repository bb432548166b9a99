"""The fusion experiments run end to end (tiny sizes) and write their JSON; the monkey one
runs on the real data where ../shared/data has it and skips cleanly where it does not."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from rtdecode.commands import experiment
from rtdecode.experiments.fusion_monkey import MonkeyConfig, run_fusion_monkey
from rtdecode.experiments.fusion_sim import FUSED, SINGLE, SimConfig, run_fusion_sim

TINY = SimConfig(good_steps=300, poor_steps=150, fusion_steps=300, fusion_val_steps=100, test_steps=300,
                 ann_restarts=1, plot_steps=50)


def test_fusion_sim_tiny_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = run_fusion_sim(2, seed=3, out_dir=tmp_path, jobs=1, cfg=TINY, plot=True)
    saved = json.loads((tmp_path / "fusion_sim.json").read_text())
    assert (tmp_path / "fusion_sim.png").stat().st_size > 10_000
    assert saved["config"]["trials"] == 2 and len(saved["trials"]) == 2
    for cond in ("good", "poor"):
        summ = saved["summary"][cond]
        for m in (*SINGLE, *FUSED):
            assert np.isfinite(summ["rms_cm_s"][m]["mean"]) and summ["rms_cm_s"][m]["n"] == 2
        for m in FUSED:
            assert 0.0 <= summ["fraction_beats_best_single"][m] <= 1.0
    assert data["traces"]["good"]["true"].shape == (50, 2)
    # the same seed gives the same numbers (trial j's seed does not depend on the trial count)
    again = run_fusion_sim(1, seed=3, out_dir=tmp_path / "again", jobs=1, cfg=TINY, plot=False)
    first = json.loads((tmp_path / "again" / "fusion_sim.json").read_text())["trials"][0]
    assert first == saved["trials"][0]
    assert again["config"]["trials"] == 1


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rtdecode")
    experiment.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_fusion_monkey_command_skips_without_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("RTDECODE_SHARED_DATA", str(tmp_path / "nowhere"))
    args = _parse(["experiment", "fusion-monkey", "--out", str(tmp_path)])
    assert experiment.run(args) == 0
    assert "skipped" in capsys.readouterr().err
    assert not (tmp_path / "fusion_monkey.json").exists()


def test_fusion_monkey_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "bmi_monkeyreach_binned"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    data = run_fusion_monkey(folder, tmp_path, splits=1, seed=1, cfg=MonkeyConfig(ann_restarts=1), plot=False)
    saved = json.loads((tmp_path / "fusion_monkey.json").read_text())
    r2 = saved["summary"]["r2"]
    assert r2["population_vector"]["position"] is None
    for m in ("kalman", "wiener", "kf_fusion", "ann_fusion"):
        assert 0.3 < r2[m]["position"]["mean"] <= 1.0
        assert 0.1 < r2[m]["velocity"]["mean"] <= 1.0
    split = data["splits"][0]["trials"]
    assert split["decoder"] + split["fusion"] + split["test"] == saved["data"]["trials"]
