"""Networks fitted in worker processes give exactly the single-process run.

Leave-one-trial-out: a tiny FrameMLP on synthetic two-class EMG envelopes (4 trials, 4 folds),
trained with ``workers = 1`` and with ``workers = 2`` (two spawned processes): every fold's
accuracy, best epoch and smoothed scores, and the exported network's weights, are identical.
The A/B protocol: the same for two restarts of a small Gamma CNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from rtdecode.cli import main  # noqa: E402
from rtdecode.nn.checkpoint import load_checkpoint  # noqa: E402
from rtdecode.nn.sidecar import sidecar_path  # noqa: E402

FS = 500.0


def _trials(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for k in range(4):
        lab = np.repeat(np.tile([0, 1], 3), int(1.0 * FS))
        amp = np.where(lab[:, None] == 1, [2.0, 0.3, 1.2], [0.3, 1.5, 0.3])
        x = amp * rng.standard_normal(amp.shape)
        np.savez(folder / f"t{k + 1}.npz", x=x.astype(np.float32), fs=FS, y=lab.astype(np.float32),
                 target_names=np.array(["label"]), meta_json=json.dumps({"label_names": ["rest", "a"]}))


def _train(tmp: Path, data: Path, workers: int) -> tuple[dict, Path]:
    out, model = tmp / f"run{workers}", tmp / f"m{workers}.onnx"
    cfg = tmp / f"w{workers}.toml"
    cfg.write_text(f'''name = "w{workers}"
threads = 1
workers = {workers}
progress = false
plots = false
[data]
path = "{data}"
[preprocessing]
chain = [{{ kind = "rms", window_s = 0.05 }}, {{ kind = "decimate", factor = 5, antialias = false }}]
[[models]]
name = "mlp"
kind = "FrameMLP"
config = {{ hidden = [8], dropout = 0.2, log_input = true }}
[optim]
epochs = 6
batch_size = 32
[protocol]
kind = "loto"
smoothing_s = [0.1]
[export]
model = "mlp"
path = "{model}"
''')
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())["results"]["models"]["mlp"], model


def test_folds_in_two_worker_processes_equal_one_process(tmp_path: Path) -> None:
    _trials(tmp_path / "data")
    one, m1 = _train(tmp_path, tmp_path / "data", 1)
    two, m2 = _train(tmp_path, tmp_path / "data", 2)
    assert len(one["folds"]) == 4
    keys = ("test", "accuracy", "best_epoch", "epochs_run", "smoothed")
    assert [{k: f[k] for k in keys} for f in one["folds"]] == [{k: f[k] for k in keys} for f in two["folds"]]
    a, _, _ = load_checkpoint(sidecar_path(m1))
    b, _, _ = load_checkpoint(sidecar_path(m2))
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name


def test_ab_restarts_in_two_worker_processes_equal_one_process(tmp_path: Path) -> None:
    """Seed 000's A/B protocol, two restarts of a small Gamma CNN: every restart's best steps and
    scores and the selected pair's weights are the same from two workers as from one process."""
    from rtdecode.nn.train import load_train_config, load_training_data, run_ab
    from tests.integration.test_train_models import _reg_cfg, _regression_npz

    npz = _regression_npz(tmp_path / "reg.npz")
    out = {}
    for workers in (1, 2):
        cfg = load_train_config(data=_reg_cfg(npz, "gamma", workers=workers, export={"enabled": False}))
        out[workers] = run_ab(cfg, load_training_data(cfg), log=lambda s: None)
    one, two = out[1], out[2]
    def scores(run: object) -> list[dict]:  # every attempt, its wall time left out
        return [{k: v for k, v in a.items() if k != "seconds"}
                for a in run.metrics["models"]["gamma"]["attempts"]]  # type: ignore[attr-defined]

    assert len(scores(one)) == 2 and scores(one) == scores(two)
    for key in ("gamma",):
        a, b = one.models[key], two.models[key]
        for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(p, q), name
