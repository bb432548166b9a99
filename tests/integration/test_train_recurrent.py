"""``rtdecode train`` end to end for the recurrent family (GRU, LSTM) on tiny data, in seconds:
train (truncated BPTT under the A/B protocol) → export → verify → served through
``predict_recording`` (the daemon's computation) equal to the torch model; ensembles and
stacks with the Wiener control export as one streaming graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from rtdecode.commands import train as train_cmd  # noqa: E402
from rtdecode.errors import ConfigError  # noqa: E402
from rtdecode.nn.train import load_train_config  # noqa: E402
from rtdecode.nn.train.recurrent import stream_windows  # noqa: E402
from rtdecode.runtime.streaming import read_metadata  # noqa: E402
from tests.integration.test_train_models import REG_CHAIN, _check_served, _regression_npz  # noqa: E402


def _cfg(npz: Path, kind: str, **over) -> dict:
    cfg = {
        "name": kind.lower(), "seed": 3, "progress": False, "plots": False,
        "data": {"kind": "npz", "path": str(npz), "trial_block_s": 1.5},
        "preprocessing": {"chain": REG_CHAIN, "standardize": True},
        "models": [{"name": "rnn", "kind": kind, "config": {"hidden": 8, "in_taps": 2}}],
        "optim": {"lr": 0.01, "epochs": 6, "patience_epochs": 10, "bptt_frames": 20, "streams": 4},
        "loss": {"kind": "mse", "skip_s": 0.5},
        "protocol": {"kind": "ab", "restarts": 2},
    }
    cfg.update(over)
    return cfg


@pytest.mark.parametrize("kind", ["GRUDecoder", "LSTMDecoder"])
def test_recurrent_family_trains_exports_verifies_and_serves(kind: str, tmp_path: Path) -> None:
    npz = _regression_npz(tmp_path / "reg.npz")
    metrics = train_cmd.train_from_config(load_train_config(data=_cfg(npz, kind)), tmp_path / "out")
    net = metrics["results"]["models"]["rnn"]
    assert net["kind"] == kind and len(net["attempts"]) == 2
    first = net["attempts"][0]
    # six epochs of truncated BPTT beat the untrained network on the held-out sets
    assert first["amax"]["a"] > 0.3, first
    assert metrics["export"]["verify"]["ok"], metrics["export"]["verify"]
    onnx_path = Path(metrics["export"]["path"])
    meta = read_metadata(onnx_path)
    n_states = 3 if kind == "LSTMDecoder" else 2  # projection frames, h (, c)
    assert len(meta.states) == n_states
    # the declared receptive field is the measured memory horizon, not the default
    assert meta.receptive_field == net["receptive_field_frames"] != 100
    _check_served(onnx_path, npz)


def test_recurrent_ensemble_stacked_with_wiener_exports_as_one_graph(tmp_path: Path) -> None:
    npz = _regression_npz(tmp_path / "reg.npz")
    cfg = _cfg(npz, "GRUDecoder", protocol={"kind": "ab", "restarts": 2, "ensemble": True,
                                            "stack_linear": True, "controls": ["linear"]},
               export={"model": "rnn_ensemble_linear"})
    metrics = train_cmd.train_from_config(load_train_config(data=cfg), tmp_path / "out")
    stacked = metrics["results"]["models"]["rnn_ensemble_linear"]
    assert stacked["kind"] == "StackedDecoder"
    assert metrics["export"]["verify"]["ok"]
    meta = read_metadata(Path(metrics["export"]["path"]))
    assert len(meta.states) == 2 * 2 + 1  # two GRUs (projection frames, h) and the Wiener filter
    _check_served(Path(metrics["export"]["path"]), npz)


def test_all_data_refits_the_ensemble_and_keeps_the_protocols_heldout_numbers(tmp_path: Path) -> None:
    npz = _regression_npz(tmp_path / "reg.npz")
    cfg = _cfg(npz, "LSTMDecoder", export={"model": "rnn_ensemble", "all_data": True},
               protocol={"kind": "ab", "restarts": 2, "ensemble": True, "controls": ["linear"]})
    metrics = train_cmd.train_from_config(load_train_config(data=cfg), tmp_path / "out")
    res = metrics["results"]
    net, ens = res["models"]["rnn"], res["models"]["rnn_ensemble"]
    held = metrics["export"]["heldout"]
    assert held["r2_score"] == pytest.approx(ens["score"], abs=1e-4)  # the card rounds to 4 digits
    assert metrics["export"]["verify"]["ok"]
    path = Path(metrics["export"]["path"])
    meta = read_metadata(path)
    budget = max(1, round((net["amax"]["step"] + net["bmax"]["step"]) / 2))
    assert meta.provenance["fitted_on"] == f"all {len(read_trials(res))} trials, 2 × {budget} epochs"
    assert len(meta.states) == 2 * 3  # two LSTMs: projection frames, h, c
    _check_served(path, npz)
    # the refit is not the protocol's ensemble: it was fitted on other (all) frames
    from rtdecode.nn.checkpoint import load_checkpoint

    refit, _, _ = load_checkpoint(tmp_path / "out" / "checkpoint.npz")
    assert type(refit).__name__ == "StackedDecoder" and len(refit.members) == 2
    with pytest.raises(ConfigError, match="export.all_data"):
        load_train_config(data=_cfg(npz, "GRUDecoder",
                                    export={"model": "rnn_ensemble_linear", "all_data": True},
                                    protocol={"kind": "ab", "restarts": 2, "ensemble": True,
                                              "stack_linear": True, "controls": ["linear"]}))


def read_trials(res: dict) -> list[int]:
    """Every trial of an A/B run."""
    return [t for k in ("train", "a", "b") for t in res["sets"][k]]


def test_recurrent_config_errors_name_the_field(tmp_path: Path) -> None:
    npz = _regression_npz(tmp_path / "reg.npz", seconds=9.0)
    bad = _cfg(npz, "GRUDecoder")
    bad["optim"]["bptt_frames"] = 1
    with pytest.raises(ConfigError, match="optim.bptt_frames"):
        load_train_config(data=bad)
    bad = _cfg(npz, "GRUDecoder", models=[{"name": "rnn", "kind": "GRUDecoder", "config": {"n_out": 5}}])
    with pytest.raises(ConfigError, match=r"models\[rnn\].config.n_out"):
        train_cmd.train_from_config(load_train_config(data=bad), tmp_path / "out")


def test_stream_windows_cover_segments_in_equal_pieces() -> None:
    rng = np.random.default_rng(0)
    seg, start, n = stream_windows([1000, 130], streams=4, window=25, rng=rng)
    assert list(seg) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert n == (130 // 4) // 25  # windows that fit in the shortest piece
    for s, size, total in ((0, 250, 1000), (1, 32, 130)):
        pieces = start[seg == s]
        assert np.all(np.diff(pieces) == size) and pieces[0] >= 0 and pieces[-1] + size <= total
