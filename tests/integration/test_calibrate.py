"""A new session from two trials, end to end on small synthetic EMG: ``rtdecode train`` fits a
FrameMLP on log-RMS envelopes (and the classic LDA) on session 1; session 2 has other electrode
gains, so both fall apart there; ``rtdecode calibrate`` refits only the session-specific part (the
MLP's input normalisation and first layer; the LDA's fit) on two session-2 trials, and
``rtdecode evaluate`` shows both recovering on the other session-2 trials."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from rtdecode.cli import main  # noqa: E402
from rtdecode.nn.sidecar import sidecar_path  # noqa: E402
from rtdecode.runtime.streaming import read_metadata  # noqa: E402

FS = 500.0
PATTERNS = np.array([[0.2, 0.2, 0.2, 0.2], [2.0, 0.3, 1.5, 0.2], [0.3, 2.0, 0.2, 1.5]])


def _session(folder: Path, gains: np.ndarray, seed: int, trials: int = 4) -> list[Path]:
    """Trials of 3 classes (rest, two gestures) held 1.5 s each; envelope × noise per channel."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for k in range(trials):
        lab = np.repeat(np.tile([0, 1, 0, 2], 2), int(1.5 * FS))
        amp = PATTERNS[lab] * gains * (1 + 0.2 * rng.standard_normal((1, 4)))
        x = amp * rng.standard_normal(amp.shape)
        files.append(folder / f"t{k + 1}.npz")
        np.savez(files[-1], x=x.astype(np.float32), fs=FS, y=lab.astype(np.float32),
                 target_names=np.array(["label"]), meta_json=json.dumps({"label_names": ["rest", "a", "b"]}))
    return files


def _config(tmp: Path, folder: Path) -> Path:
    cfg = tmp / "mlp.toml"
    cfg.write_text(f'''name = "mlp"
threads = 1
progress = false
plots = false
[data]
path = "{folder}"
[preprocessing]
chain = [{{ kind = "rms", window_s = 0.05 }}, {{ kind = "decimate", factor = 5, antialias = false }}]
[[models]]
name = "mlp"
kind = "FrameMLP"
config = {{ hidden = [16], log_input = true }}
[optim]
epochs = 8
batch_size = 64
[protocol]
kind = "loto"
folds = [1, 2]
smoothing_s = [0.1]
baselines = ["lda"]
lda_window_s = 0.1
[export]
model = "{{name}}"
path = "{{path}}"
all_data = true
''')
    return cfg


def _accuracy(model: Path, files: list[Path], out: Path) -> float:
    assert main(["evaluate", str(model), *map(str, files), "--out", str(out), "--baseline", "none",
                 "--no-plot", "--smoothing-s", "0.1"]) == 0
    return float(json.loads((out / "evaluation.json").read_text())["model"]["accuracy"])


def test_calibration_restores_a_new_session_from_two_trials(tmp_path: Path) -> None:
    _session(tmp_path / "s1", np.ones(4), seed=0)
    s2 = _session(tmp_path / "s2", np.array([0.25, 4.0, 1.0, 0.4]), seed=1)
    template = _config(tmp_path, tmp_path / "s1").read_text()
    models = {}
    for name in ("mlp", "lda"):
        models[name] = tmp_path / f"{name}.onnx"
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(template.replace("{name}", name).replace("{path}", str(models[name])))
        assert main(["train", str(cfg), "--out", str(tmp_path / f"run_{name}")]) == 0
    assert sidecar_path(models["mlp"]).exists()
    for name, model in models.items():
        cal = tmp_path / f"{name}_cal.onnx"
        args = ["calibrate", str(model), str(s2[0]), str(s2[1]), "--out", str(cal), "--epochs", "20"]
        assert main(args) == 0
        before = _accuracy(model, s2[2:], tmp_path / f"eval_{name}")
        after = _accuracy(cal, s2[2:], tmp_path / f"eval_{name}_cal")
        assert after > 0.85 and after > before + 0.1, (name, before, after)
        meta = read_metadata(cal)
        assert meta.provenance["calibrated_from"]["model"] == read_metadata(model).name
        assert meta.provenance["calibration"]["recordings"] == ["t1.npz", "t2.npz"]
        assert meta.bounds is not None and meta.outputs == read_metadata(model).outputs
        if name == "mlp":
            rep = meta.metrics["calibration"]
            # three recalibrations with seeds 0, 1, 2, served as their mean-logit ensemble
            assert rep["fitted"] == ["input_bn", "layers.0", "layers.1"] and rep["members"] == 3
            assert rep["seeds"] == [0, 1, 2] and all(1 <= e <= 20 for e in rep["epochs"])
            for member in rep["member_reports"]:  # each left one calibration trial out
                assert len(member["held_out_accuracy_per_epoch"]) == 20
            from rtdecode.nn.checkpoint import load_checkpoint
            from rtdecode.nn.models import FrameMLP, StackedDecoder

            old, _, _ = load_checkpoint(sidecar_path(model))
            new, _, _ = load_checkpoint(sidecar_path(cal))
            assert isinstance(new, StackedDecoder) and len(new.members) == 3
            firsts = []
            for m in new.members:
                assert isinstance(m, FrameMLP)
                torch.testing.assert_close(old.layers[4].weight, m.layers[4].weight)  # frozen: kept
                assert not torch.allclose(old.layers[0].weight, m.layers[0].weight)
                firsts.append(m.layers[0].weight)
            assert not torch.allclose(firsts[0], firsts[1])  # the seeds gave different fits
