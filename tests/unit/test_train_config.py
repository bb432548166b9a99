"""``rtdecode train`` config validation: unknown keys rejected, every error names its field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from rtdecode.errors import ConfigError  # noqa: E402
from rtdecode.nn.datasets import Segment, TrainingData  # noqa: E402
from rtdecode.nn.train import (  # noqa: E402
    ModelEntry,
    build_model,
    fold_target_scaling,
    load_train_config,
    masked_r2,
    r2_score,
)

ROOT = Path(__file__).resolve().parents[2]


def _base(**over) -> dict:
    cfg = {
        "name": "t",
        "data": {"kind": "npz", "path": "x.npz", "trial_block_s": 1.0},
        "models": [{"name": "g", "kind": "GammaCNN"}],
        "protocol": {"kind": "ab"},
    }
    cfg.update(over)
    return cfg


def _error(cfg: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        load_train_config(data=cfg)
    return str(exc.value)


def test_minimal_config_validates_with_defaults() -> None:
    cfg = load_train_config(data=_base())
    assert cfg.task == "regression" and cfg.optim.steps == 1000 and cfg.protocol.restarts == 1
    assert cfg.data.path.is_absolute()


@pytest.mark.parametrize("cfg, field", [
    (_base(epochs=3), "epochs: unknown field"),
    (_base(optim={"lr": 0.1, "momentum": 0.9}), "optim.momentum: unknown field"),
    (_base(optim={"lr": -1}), "optim.lr"),
    (_base(data={"kind": "edf", "path": "x"}), "data.kind"),
    (_base(protocol={"kind": "ab", "restarts": 0}), "protocol.restarts"),
    (_base(models=[]), "models"),
    (_base(models=[{"name": "g", "kind": "GammaCNN", "confg": {}}]), "models.0.confg: unknown field"),
    (_base(protocol={"kind": "loto"}), "protocol.kind: regressors use 'ab'"),
    (_base(models=[{"name": "s", "kind": "SConvNet"}]), "protocol.kind: classifiers use 'loto'"),
    (_base(loss={"kind": "cross_entropy"}), "loss.kind"),
    (_base(export={"model": "nope"}), "export.model"),
    (_base(export={"model": "g_ensemble"}), "export.model"),
    (_base(protocol={"kind": "ab", "stack_linear": True}), "protocol.stack_linear"),
    (_base(models=[{"name": "a", "kind": "GammaCNN"}, {"name": "a", "kind": "GammaCNN"}]), "names repeat"),
    (_base(models=[{"name": "a", "kind": "GammaCNN"}, {"name": "b", "kind": "SConvNet"}]),
     "mixes classifiers"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_config_errors_name_the_field(cfg: dict, field: str) -> None:
    assert field in _error(cfg)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_train_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_train_config(bad)


def test_shipped_training_configs_validate() -> None:
    files = sorted((ROOT / "configs" / "train").glob("*.toml"))
    assert files, "configs/train/*.toml missing"
    from rtdecode.config import read_document
    from rtdecode.nn.m2m.config import load_m2m_config

    for f in files:
        if read_document(f).get("task") == "m2m":  # M2M-Net studies have their own schema
            assert load_m2m_config(f).name, f
            continue
        cfg = load_train_config(f)
        assert cfg.data.path.is_absolute(), f


def _data(k: int = 2, grid: tuple[int, int] | None = None) -> TrainingData:
    seg = Segment(x=np.zeros((10, 6), np.float32), y=np.zeros((10, k), np.float32),
                  trial=np.ones(10, np.int64))
    return TrainingData(segments=[seg], task="regression", rate_hz=100.0, channels=6, preprocessing=[],
                        frame_rate_hz=100.0, output_names=[f"o{i}" for i in range(k)],
                        output_units=[""] * k, grid_shape=grid)


def test_build_model_fills_sizes_from_the_data_and_names_bad_fields() -> None:
    m = build_model(ModelEntry(name="g", kind="GammaCNN", config={"feature_sizes": [4]}), _data(3))
    assert m.config["n_in"] == 6 and m.config["shared_sizes"] == [6, 3, 3] and m.config["rate_hz"] == 100.0
    with pytest.raises(ConfigError, match=r"models\[g\]\.config\.shared_sizes"):
        build_model(ModelEntry(name="g", kind="GammaCNN", config={"shared_sizes": [3, 1]}), _data(2))
    with pytest.raises(ConfigError, match=r"models\[g\]\.config\.n_in"):
        build_model(ModelEntry(name="g", kind="GammaCNN", config={"n_in": 5}), _data(2))
    with pytest.raises(ConfigError, match=r"models\[l\]\.config\.taps"):
        build_model(ModelEntry(name="l", kind="LinearDecoder"), _data(2))
    with pytest.raises(ConfigError, match="grid"):
        build_model(ModelEntry(name="s", kind="SConvNet"), _data(2))
    with pytest.raises(ConfigError, match=r"models\[g\]\.config"):
        build_model(ModelEntry(name="g", kind="GammaCNN", config={"variant": "spline"}), _data(2))


def test_fold_target_scaling_outputs_physical_units() -> None:
    import torch

    torch.manual_seed(0)
    for entry in (ModelEntry(name="g", kind="GammaCNN", config={"feature_sizes": [4]}),
                  ModelEntry(name="f", kind="GammaCNN", config={"feature_sizes": [4], "variant": "free"}),
                  ModelEntry(name="l", kind="LinearDecoder", config={"taps": 3})):
        m = build_model(entry, _data(2))
        x = torch.randn(1, 6, 50)
        with torch.no_grad():
            z = m(x)
            fold_target_scaling(m, np.array([10.0, -1.0]), np.array([2.0, 0.5]))
            y = m(x)
        expect = z * torch.tensor([2.0, 0.5])[None, :, None] + torch.tensor([10.0, -1.0])[None, :, None]
        torch.testing.assert_close(y, expect, rtol=1e-5, atol=1e-5)


def test_r2_helpers_agree() -> None:
    import torch

    rng = np.random.default_rng(0)
    y = rng.standard_normal((2, 3, 40)).astype(np.float32)
    p = y + 0.3 * rng.standard_normal(y.shape).astype(np.float32)
    mask = rng.random((2, 40)) > 0.3
    got = masked_r2(torch.from_numpy(p), torch.from_numpy(y), torch.from_numpy(mask)).numpy()
    yy = np.concatenate([y[i].T[mask[i]] for i in range(2)])
    pp = np.concatenate([p[i].T[mask[i]] for i in range(2)])
    np.testing.assert_allclose(got, r2_score(yy, pp), rtol=1e-4)
    assert np.isnan(r2_score(np.ones((5, 1)), np.zeros((5, 1))))[0]


def test_paths_resolve_against_the_config_file_and_absolute_paths_are_kept(tmp_path: Path) -> None:
    body = ('name = "t"\nout_dir = "{out}"\n[data]\nkind = "npz"\npath = "x.npz"\ntrial_block_s = 1.0\n'
            '[[models]]\nname = "g"\nkind = "GammaCNN"\n[protocol]\nkind = "ab"\n'
            '[export]\npath = "{exp}"\n')
    rel = tmp_path / "rel.toml"
    rel.write_text(body.format(out="o", exp="m.onnx"))
    cfg = load_train_config(rel)
    assert cfg.out_dir == tmp_path / "o" and cfg.export.path == tmp_path / "m.onnx"
    assert cfg.data.path == tmp_path / "x.npz"
    absolute = tmp_path / "abs.toml"
    absolute.write_text(body.format(out="/opt/runs/o", exp="/opt/runs/m.onnx"))
    cfg = load_train_config(absolute)
    assert cfg.out_dir == Path("/opt/runs/o") and cfg.export.path == Path("/opt/runs/m.onnx")
