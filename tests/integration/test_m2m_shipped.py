"""The shipped M2M-Net models (``models/tms/*.onnx``): their verdict and their live path.

``test_train_shipped_models.py`` verifies them; here every head of a shipped model must have
beaten the best baseline under the shipping rule its metadata states (docs/m2m.md), and the model
serves the virtual subject live: simulator → daemon → subscriber, a prediction for every pulse
before its measured pair, both on the pulse's id. Needs neither torch nor scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtdecode.cli import main
from rtdecode.tms.m2m_model import M2mModel
from tests.integration.m2m_live import serve_and_check

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "models" / "tms").glob("*.onnx"))
EXAMPLE = ROOT / "docs" / "examples" / "tms-m2m-sim.toml"
IDS = [p.stem for p in SHIPPED]


@pytest.mark.parametrize("path", SHIPPED, ids=IDS)
def test_every_head_beat_the_best_baseline_on_held_out_pulses(path: Path) -> None:
    verdict = M2mModel(path).meta.metrics["held_out"]
    assert "whole interval is below zero" in verdict["rule"] and verdict["pulses"] >= 1000
    for head, v in verdict["heads"].items():
        assert v["beats_baseline"] and v["ci95"][1] < 0, (head, v)
        assert v["nrmse_held_out"] < v["best_baseline_nrmse"] == min(verdict["baselines"].values())


@pytest.mark.parametrize("path", SHIPPED, ids=IDS)
def test_shipped_model_predicts_every_pulse_live(path: Path, unique_name: str, ipc_endpoint: str) -> None:
    status = serve_and_check(path, unique_name, ipc_endpoint)
    assert status["paired"] >= 10


def test_example_config_serves_the_shipped_model(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/examples/tms-m2m-sim.toml names a shipped model and passes ``rtdecode doctor`` as it is."""
    rc = main(["doctor", "--json", "--budget-ms", "10000", "--steps", "40", "--messages", "40",
               "--lsl-timeout", "0.5", str(EXAMPLE)])
    r = json.loads(capsys.readouterr().out)
    failed = [c for c in r["checks"] if not c["ok"] and c["level"] == "fail"]
    # the config's port may be held by a demo running beside the tests: that check alone may fail
    assert all(c["name"] == "sink endpoint bindable" for c in failed), failed
    assert rc == (1 if failed else 0)
    assert any(p.name in EXAMPLE.read_text() for p in SHIPPED)
