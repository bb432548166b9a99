"""M2M-Net end to end: a tiny model trained from simulated sessions, exported, verified and served.

The module trains ``configs/train/m2m_tiny.toml`` once (seconds: 32³ volumes, tiny networks, a
few epochs), then checks the study's outputs, ``rtdecode verify`` / ``rtdecode train`` on it,
the map and predict commands. The live path (simulator → daemon → subscriber) is tested with
the shipped model in test_m2m_shipped.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from rtdecode.cli import main  # noqa: E402
from rtdecode.tms.m2m_model import M2mModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "train" / "m2m_tiny.toml"


@pytest.fixture
def trained(m2m_tiny: dict[str, Any]) -> dict[str, Any]:
    """The tiny config trained once per test session (tests/integration/conftest.py)."""
    return m2m_tiny


def test_tiny_study_reports_every_setting_and_baseline(trained: dict[str, Any]) -> None:
    res, out = trained["res"], trained["out"]
    assert res["splits"][0]["test"] > 0 and res["sessions"]["held_out"][0]["pulses"] > 100
    keys = {f"{s['input']}/{s['depth']}" for s in res["settings"]}
    assert keys == {"efield/3", "firing/3"}
    for s in res["settings"]:
        for h in ("direct", "synergy", "both"):
            sc = s["heads"][h]
            assert np.isfinite([sc["nrmse_test"], sc["bic"], sc["aicc"]]).all() and sc["params"] > 0
        assert s["heads"]["both"]["params"] > s["heads"]["synergy"]["params"]
    names = {b["baseline"].split(" (")[0] for b in res["baselines"]}
    assert names == {"mean per intensity", "nearest mapped point", "ridge on the volume"}
    table = (out / "table1.md").read_text()
    assert "Neural firing input" in table and "Raw E-field input" in table and "AICc" in table
    assert res["shipped"]["verify"]["ok"], res["shipped"]["verify"]
    card = trained["model"].with_suffix(".md").read_text()
    assert "Held-out NRMSE" in card and "ridge on the volume" in card
    meta = M2mModel(trained["model"]).meta
    assert meta.muscles[0] == "FDI" and len(meta.synergy_basis) == 9 and meta.volume.kind == "firing"
    verdict = meta.metrics["held_out"]
    held = sum(s["pulses"] for s in res["sessions"]["held_out"])
    assert verdict["pulses"] == res["splits"][0]["test"] + held
    assert verdict["best_baseline"] == min(verdict["baselines"], key=verdict["baselines"].get)
    for v in verdict["heads"].values():  # the rule: the whole interval of model − baseline below zero
        assert v["nrmse_held_out"] > 0 and v["ci95"][0] <= v["ci95"][1]
        assert v["diff"] == pytest.approx(v["nrmse_held_out"] - v["best_baseline_nrmse"])
        assert v["beats_baseline"] == (v["ci95"][1] < 0)
    assert "95 % interval" in card and "subject0_seed" in card


def test_verify_and_train_commands(trained: dict[str, Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(trained["model"])]) == 0
    assert "onnx vs torch [both]" in capsys.readouterr().out
    assert main(["info", str(trained["model"])]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "event" and info["bounds"]["input"]["lo"] and info["synergy_basis"]
    # a model whose sidecar is gone still verifies the graph (the torch comparison is skipped)
    alone = tmp_path / "alone.onnx"
    shutil.copy(trained["model"], alone)
    assert main(["verify", str(alone)]) == 0
    assert "skipped: torch vs onnx" in capsys.readouterr().out
    # `rtdecode train` hands an M2M config (task = "m2m") to the M2M loader: its errors name M2M fields
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TINY.read_text().replace("[mapper]", "[mapper]\nwidth = 3"))
    assert main(["train", str(cfg)]) == 2
    assert "mapper.width" in capsys.readouterr().err


def test_map_and_predict_commands(trained: dict[str, Any], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["m2m", "map", str(trained["model"]), "--span-mm", "8", "--step-mm", "4",
                 "--truth-subject", "0", "--out-dir", str(tmp_path)]) == 0
    z = np.load(tmp_path / "map.npz")
    assert z["mep_uv"].shape == (3, 3, 15) and z["truth_uv"].shape == (3, 3, 15)
    assert (tmp_path / "map.png").stat().st_size > 10_000
    assert "correlation with the noise-free map" in capsys.readouterr().out
    table = next((trained["out"] / "sessions").glob("*seed2*.csv"))
    assert main(["m2m", "predict", str(trained["model"]), str(table), "--out", str(tmp_path / "p.csv")]) == 0
    assert "NRMSE" in capsys.readouterr().out
    assert len((tmp_path / "p.csv").read_text().splitlines()) > 100
