"""``rtdecode train`` end to end on tiny data: every model family trains, exports, verifies,
and the exported model served through ``predict_recording`` (the daemon's computation)
equals the torch model on the same chain output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from rtdecode.commands import train as train_cmd  # noqa: E402
from rtdecode.commands.predict import predict_recording  # noqa: E402
from rtdecode.dsp import build_chain  # noqa: E402
from rtdecode.errors import RtdecodeError  # noqa: E402
from rtdecode.io.readers import read_recording  # noqa: E402
from rtdecode.nn.checkpoint import load_checkpoint  # noqa: E402
from rtdecode.nn.models import streaming_core  # noqa: E402
from rtdecode.nn.sidecar import sidecar_path  # noqa: E402
from rtdecode.nn.train import load_train_config  # noqa: E402

REG_CHAIN = [{"kind": "rectify"}, {"kind": "smooth", "window_s": 0.04}, {"kind": "decimate", "factor": 4}]
GRID = (4, 3)


def _regression_npz(path: Path, seconds: float = 24.0, fs: float = 200.0) -> Path:
    """4 channels of noise whose envelope drives two smooth targets (with a lag)."""
    rng = np.random.default_rng(0)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    freqs = [(0.3, 0), (0.5, 1), (0.2, 2), (0.7, 3)]
    env = np.stack([1.0 + np.sin(2 * np.pi * f * t + p) for f, p in freqs], 1)
    x = env * rng.standard_normal((n, 4))
    lag = int(0.05 * fs)
    y = np.zeros((n, 2))
    y[lag:, 0] = env[:-lag, 0] + 0.5 * env[:-lag, 1]
    y[lag:, 1] = env[:-lag, 2] - env[:-lag, 3]
    np.savez(path, x=x.astype(np.float32), fs=fs, y=y.astype(np.float32),
             target_names=np.array(["force", "angle"]),
             meta_json=json.dumps({"units": {"x": "uV", "force": "N", "angle": "deg"}}))
    return path


def _classification_npz(path: Path, trials: int = 4, seconds: float = 1.5, fs: float = 1000.0) -> Path:
    """A 4×3 grid whose mean pattern depends on the class; 3 classes per trial."""
    rng = np.random.default_rng(1)
    n_per = int(seconds * fs)
    patterns = rng.uniform(-1.5, 1.5, (3, 12))
    xs, ys, tr = [], [], []
    for k in range(trials):
        lab = np.repeat(np.arange(3), n_per // 3 + 1)[:n_per]
        xs.append(patterns[lab] + 0.4 * rng.standard_normal((n_per, 12)))
        ys.append(lab)
        tr.append(np.full(n_per, k + 1))
    np.savez(path, x=np.concatenate(xs).astype(np.float32), fs=fs, y=np.concatenate(ys).astype(np.float32),
             trial=np.concatenate(tr), target_names=np.array(["label"]),
             meta_json=json.dumps({"label_names": ["rest", "fist", "open"], "units": {"x": "mV"}}))
    return path


CLS_CHAIN = [{"kind": "scale", "gain": 0.2, "offset": -2.5},
             {"kind": "clip", "min_value": 0.0, "max_value": 1.0},
             {"kind": "grid", "shape": list(GRID), "order": list(range(12))}]

REGRESSION = {
    "gamma": {"kind": "GammaCNN",
              "config": {"feature_sizes": [5, 3], "shared_sizes": [3, 2], "kernel_s": 0.3}},
    "free": {"kind": "GammaCNN",
             "config": {"feature_sizes": [5, 3], "shared_sizes": [3, 2], "variant": "free"}},
    "linear": {"kind": "LinearDecoder", "config": {"taps": 8}},
}
CLASSIFIERS = {
    "sconvnet_b": {"kind": "SConvNet", "config": {"variant": "B", "widths": [4, 6], "fc": 8}},
    "allconvnet": {"kind": "AllConvNet", "config": {"widths": [4, 6]}},
}


def _reg_cfg(npz: Path, name: str, **over) -> dict:
    cfg = {
        "name": name, "seed": 1, "progress": False, "plots": False,
        "data": {"kind": "npz", "path": str(npz), "trial_block_s": 1.5},
        "preprocessing": {"chain": REG_CHAIN, "standardize": True},
        "models": [{"name": name, **REGRESSION[name]}],
        "optim": {"lr": 0.05, "steps": 8, "patience_steps": 50},
        "loss": {"kind": "sse", "skip_s": 0.5},
        "protocol": {"kind": "ab", "restarts": 2},
    }
    cfg.update(over)
    return cfg


def _cls_cfg(npz: Path, name: str, **over) -> dict:
    cfg = {
        "name": name, "seed": 2, "progress": False, "plots": False,
        "data": {"kind": "npz", "path": str(npz)},
        "preprocessing": {"chain": CLS_CHAIN},
        "models": [{"name": name, **CLASSIFIERS[name]}],
        "optim": {"lr": 1e-2, "epochs": 2, "patience_epochs": 1, "batch_size": 64, "max_train_frames": 256,
                  "max_val_frames": 128},
        "protocol": {"kind": "loto", "folds": [1, 2], "smoothing_s": [0.05]},
    }
    cfg.update(over)
    return cfg


def _torch_on_chain(onnx_path: Path, rec) -> np.ndarray:
    """The exported torch model (sidecar) offline on build_chain's output for ``rec``."""
    model, _spec, extra = load_checkpoint(sidecar_path(onnx_path))
    chain = build_chain(extra["preprocessing"], rec.fs, rec.n_channels)
    frames, _ = chain.process(rec.x, rec.t)
    core = streaming_core(model).eval()
    with torch.no_grad():
        y = core(torch.from_numpy(np.ascontiguousarray(frames.T[None])))
        if extra["task"] == "classification":
            y = torch.softmax(y, dim=1)
    return y[0].numpy().T


def _check_served(onnx_path: Path, npz: Path) -> None:
    rec = read_recording(npz)
    served = predict_recording(onnx_path, rec)["y"]
    ref = _torch_on_chain(onnx_path, rec)
    assert served.shape == ref.shape
    np.testing.assert_allclose(served, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_families_train_export_verify_and_serve(name: str, tmp_path: Path) -> None:
    npz = _regression_npz(tmp_path / "reg.npz")
    cfg = load_train_config(data=_reg_cfg(npz, name, plots=(name == "gamma")))
    metrics = train_cmd.train_from_config(cfg, tmp_path / "out")
    res = metrics["results"]
    assert res["protocol"] == "ab" and len(res["models"][name]["attempts"]) == 2
    assert set(res["sets"]) == {"train", "a", "b"}
    assert metrics["export"]["verify"]["ok"], metrics["export"]["verify"]
    held = metrics["export"]["heldout"]
    assert set(held["r2_amax_b_outputs"]) == {"force", "angle"}
    out = tmp_path / "out"
    assert (out / "metrics.json").exists() and (out / "checkpoint.npz").exists()
    if name == "gamma":
        assert (out / "curves.png").exists() and (out / "predictions.png").exists()
        # a few full-batch steps already beat the untrained network on the training set
        curve = res["models"][name]["attempts"][0]
        assert curve["amax"]["train"] > -1.0
    onnx_path = Path(metrics["export"]["path"])
    _check_served(onnx_path, npz)
    # the fitted standardize stage travels in the model file's chain
    from rtdecode.runtime.streaming import read_metadata

    assert [s["kind"] for s in read_metadata(onnx_path).preprocessing] == \
        ["rectify", "smooth", "decimate", "standardize"]


def test_gamma_training_with_controls_improves_on_the_start(tmp_path: Path) -> None:
    npz = _regression_npz(tmp_path / "reg.npz")
    optim = {"lr": 0.05, "steps": 40, "patience_steps": 100}
    cfg = load_train_config(data=_reg_cfg(npz, "gamma", optim=optim,
                                          protocol={"kind": "ab", "restarts": 1,
                                                    "controls": ["linear", "shuffled"]},
                                          export={"enabled": False}))
    from rtdecode.nn.train import load_training_data, run_ab

    res = run_ab(cfg, load_training_data(cfg), log=lambda s: None)
    m = res.metrics["models"]["gamma"]
    first = res.curves["gamma"]["amax"]["r2"]["a"][0]
    assert m["amax"]["r2"]["a"] > first + 0.05  # training helped on the validation set
    lin = res.metrics["controls"]["linear"]
    assert lin["score"] > 0.3 and lin["lags"] == round(0.3 * 50)
    assert "shuffled" in res.metrics["controls"]
    assert res.metrics["controls"]["shuffled"]["score"] < lin["score"]


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_families_train_export_verify_and_serve(name: str, tmp_path: Path) -> None:
    npz = _classification_npz(tmp_path / "cls.npz")
    protocol = {"kind": "loto", "folds": [1, 2], "smoothing_s": [0.05], "baselines": ["lda"],
                "lda_window_s": 0.05}
    over = {"plots": True, "protocol": protocol} if name == "sconvnet_b" else {}
    cfg = load_train_config(data=_cls_cfg(npz, name, **over))
    metrics = train_cmd.train_from_config(cfg, tmp_path / "out")
    res = metrics["results"]
    m = res["models"][name]
    assert [f["test"] for f in m["folds"]] == [1, 2] and m["accuracy"]["n"] == 2
    assert set(m["smoothed"]) == {"50ms_average", "50ms_majority"}
    assert np.asarray(m["confusion"]).sum() == 2 * 1500
    assert metrics["export"]["verify"]["ok"], metrics["export"]["verify"]
    assert metrics["export"]["heldout"]["heldout_trial"] == 1
    if name == "sconvnet_b":
        assert res["baselines"]["lda"]["accuracy"]["mean"] > 0.5
        assert (tmp_path / "out" / "confusion.png").exists()
    _check_served(Path(metrics["export"]["path"]), npz)


def test_train_command_runs_and_reports(tmp_path: Path, capsys) -> None:
    npz = _regression_npz(tmp_path / "reg.npz")
    cfg = _reg_cfg(npz, "linear")
    lines = [f'name = "{cfg["name"]}"', "progress = false", "plots = false", "[data]", 'kind = "npz"',
             f'path = "{npz.name}"', "trial_block_s = 1.5", "[preprocessing]",
             "chain = " + json.dumps(REG_CHAIN).replace('": ', '" = ').replace("{", "{ ").replace("}", " }"),
             "[[models]]", 'name = "linear"', 'kind = "LinearDecoder"', "config = { taps = 4 }",
             "[optim]", "steps = 3", "[protocol]", 'kind = "ab"', "[export]", 'path = "lin.onnx"']
    toml = tmp_path / "lin.toml"
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="rtdecode")
    train_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", str(toml), "--out", str(tmp_path / "run"), "--no-progress"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "linear: R² score" in out and "verify: PASS" in out
    assert (tmp_path / "lin.onnx").exists()  # export.path is relative to the config file
    bad = tmp_path / "bad.toml"
    bad.write_text(toml.read_text(encoding="utf-8") + "unknown_key = 1\n", encoding="utf-8")
    with pytest.raises(RtdecodeError, match="unknown_key"):
        train_cmd.run(parser.parse_args(["train", str(bad)]))


def test_real_slices_train_export_and_serve(shared_data: Path, tmp_path: Path) -> None:
    """Tiny real runs: 3 flexemg trials (seed 004 chain) and the monkey reach spikes."""
    flex = shared_data / "flexemg_hdsemg_gestures" / "data" / "001-Session1Train"
    cfg = load_train_config(data={
        "name": "flex_tiny", "progress": False, "plots": False,
        "data": {"kind": "flexemg", "path": str(flex), "max_trials": 3},
        "preprocessing": {"seed004_images": True},
        "models": [{"name": "a", "kind": "SConvNet", "config": {"variant": "A", "widths": [4, 8], "fc": 16}}],
        "optim": {"epochs": 1, "max_train_frames": 512, "max_val_frames": 256},
        "protocol": {"kind": "loto", "folds": [1]},
    })
    metrics = train_cmd.train_from_config(cfg, tmp_path / "flex")
    assert metrics["data"]["inputs"] == 64 and metrics["export"]["verify"]["ok"]
    onnx_path = Path(metrics["export"]["path"])
    rec = read_recording(flex / "001-001.mat").segment(0.0, 2.0)
    served = predict_recording(onnx_path, rec)["y"]
    np.testing.assert_allclose(served, _torch_on_chain(onnx_path, rec), rtol=1e-4, atol=1e-5)

    cfg = load_train_config(data={
        "name": "monkey_tiny", "progress": False, "plots": False,
        "data": {"kind": "monkey_reach", "path": str(shared_data / "bmi_monkeyreach_binned"),
                 "targets": ["vx", "vy"]},
        "preprocessing": {"standardize": True},
        "models": [{"name": "g", "kind": "GammaCNN",
                    "config": {"feature_sizes": [6], "shared_sizes": [3, 2]}}],
        "optim": {"lr": 0.05, "steps": 3},
        "protocol": {"kind": "ab", "restarts": 2, "controls": ["linear"], "ensemble": True,
                     "stack_linear": True},
        "export": {"model": "g_ensemble_linear"},
    })
    metrics = train_cmd.train_from_config(cfg, tmp_path / "monkey")
    assert metrics["data"]["trials"] == 640 and metrics["export"]["verify"]["ok"]
    res = metrics["results"]["models"]
    assert res["g_ensemble"]["members"] == {"a": 2, "b": 2}
    assert res["g_ensemble_linear"]["kind"] == "StackedDecoder"
    # the least-squares head can only improve on its parts on the set it was fitted on, and
    # the linear control alone already scores ≈ 0.8 on these velocities: a 3-step network
    # mixed with it must not fall far below it on the other set
    assert res["g_ensemble_linear"]["score"] > metrics["results"]["controls"]["linear"]["score"] - 0.05
    onnx_path = Path(metrics["export"]["path"])
    rec = read_recording(shared_data / "bmi_monkeyreach_binned").segment(0.0, 20.0)
    served = predict_recording(onnx_path, rec)["y"]
    np.testing.assert_allclose(served, _torch_on_chain(onnx_path, rec), rtol=1e-4, atol=1e-3)
