"""A rig's own recording end to end with documented commands only: ``rtdecode inspect`` writes a
starter config for an OpenBCI .xdf with gesture markers, ``rtdecode train`` fits and exports the
classic decoder (TD features → LDA, the window as ONNX state), ``rtdecode evaluate`` scores it on
another .xdf beside the baseline it fits itself, and the daemon serves the exported model over
real LSL and ZeroMQ with the same outputs as ``rtdecode predict``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from rtdecode.cli import main  # noqa: E402
from rtdecode.commands.predict import predict_recording  # noqa: E402
from rtdecode.io.readers import read_recording  # noqa: E402
from rtdecode.runtime.streaming import read_metadata  # noqa: E402
from tests.integration.test_daemon_e2e import serve_replay  # noqa: E402

XDF = "openbci_forearm_emg_xdf/threeMotionTwo"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA}")
    tmp = tmp_path_factory.mktemp("rig")
    cfg = tmp / "rig.toml"
    assert main(["inspect", str(SHARED_DATA / XDF / "test1.xdf"), "--write-config", str(cfg)]) == 0
    text = cfg.read_text()
    assert 'start = "{}s"' in text and 'end = "{}e"' in text and 'baselines = ["lda"]' in text
    # the documented edits: class names, the cue-to-movement delay, a short run
    text = text.replace('classes = { "0" = "0", "1" = "1", "2" = "2", "3" = "3" }',
                        'classes = { "0" = "snap", "1" = "squeeze", "2" = "tap", "3" = "rest" }\n'
                        "offset_s = 0.6\nduration_s = 1.0")
    text = re.sub(r'end = "\{\}e"\n', "", text)
    assert text.rstrip().endswith("all_data = true")  # [export] is the last table: add its path
    cfg.write_text(text + f'path = "{tmp / "rig.onnx"}"\n')
    assert main(["train", str(cfg), "--no-progress", "--out", str(tmp / "run")]) == 0
    return {"model": tmp / "rig.onnx", "run": tmp / "run", "tmp": tmp}


def test_starter_config_trains_and_exports_a_verified_streaming_lda(trained: dict[str, Path]) -> None:
    metrics = json.loads((trained["run"] / "metrics.json").read_text())
    lda = metrics["results"]["baselines"]["lda"]
    assert lda["accuracy"]["n"] >= 5 and lda["accuracy"]["mean"] > 0.5  # 4 classes, rest ~ half the samples
    assert metrics["export"]["verify"]["ok"]
    meta = read_metadata(trained["model"])
    assert [o.name for o in meta.outputs] == ["rest", "snap", "squeeze", "tap"]
    assert meta.task == "classification"
    assert [s["kind"] for s in meta.preprocessing] == ["butter"] and meta.states[0].shape == [1, 8, 51]
    assert meta.provenance["fitted_on"].startswith("every labelled sample")
    assert meta.provenance["data_spec"]["markers"]["offset_s"] == 0.6
    assert meta.bounds is not None and meta.bounds.input.n == 8 and meta.bounds.output.max == [1.0] * 4


def test_evaluate_on_another_recording_beside_the_baseline(trained: dict[str, Path],
                                                           shared_data: Path) -> None:
    out = trained["tmp"] / "eval"
    rec = str(shared_data / XDF / "ayush.xdf")
    args = ["evaluate", str(trained["model"]), rec, "--out", str(out), "--smoothing-s", "0.1", "0.2"]
    assert main(args) == 0
    s = json.loads((out / "evaluation.json").read_text())
    model, base = s["model"], s["baseline"]
    assert model["frames"] == base["frames"] > 50_000
    assert model["accuracy"] > 0.5 and set(model["smoothed"]) == {"100ms_average", "100ms_majority",
                                                                   "200ms_average", "200ms_majority"}
    cm = np.asarray(model["confusion"])
    assert cm.shape == (4, 4) and cm.sum() == model["frames"]
    # the baseline is the same classic decoder fitted on the same data: the same numbers
    assert base["accuracy"] == pytest.approx(model["accuracy"], abs=0.01)
    assert (out / "baseline.onnx").exists() and (out / "confusion.png").exists()


@pytest.mark.data
def test_daemon_serves_the_exported_lda_like_predict(trained: dict[str, Path], shared_data: Path,
                                                    unique_name: str, ipc_endpoint: str) -> None:
    rec_path = shared_data / XDF / "test1.xdf"
    rec = read_recording(rec_path).segment(10.0, 14.0)
    msgs, _, _ = serve_replay(trained["tmp"], unique_name, ipc_endpoint, trained["model"], rec_path,
                              channels=8, rate=250.0, start_s=10.0, stop_s=14.0, n=rec.n_samples)
    off = predict_recording(trained["model"], rec)
    y = np.vstack([m.values for m in msgs])
    assert y.shape == off["y"].shape == (rec.n_samples, 4)
    np.testing.assert_allclose(y, off["y"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
