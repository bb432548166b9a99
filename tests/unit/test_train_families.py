"""The model-family registry: one place maps a family name to its builder; configs read it."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from rtdecode.errors import ConfigError  # noqa: E402
from rtdecode.nn.train import FAMILIES, Family, load_train_config, register_family  # noqa: E402
from rtdecode.nn.train.families import FAMILIES as REGISTRY  # noqa: E402
from rtdecode.nn.train.families import family, kinds_of


def _cfg(**over) -> dict:
    cfg = {"name": "t", "data": {"path": "x.npz", "trial_block_s": 1.0}, "protocol": {"kind": "loto"}}
    cfg.update(over)
    return cfg


def test_registry_holds_the_seed_families_by_task() -> None:
    assert FAMILIES is REGISTRY
    assert kinds_of("regression")[:2] == ["GammaCNN", "LinearDecoder"]
    assert kinds_of("classification")[:2] == ["SConvNet", "AllConvNet"]
    with pytest.raises(ConfigError, match="unknown model kind 'GRU'"):
        family("GRU")


def test_a_registered_family_is_accepted_by_the_config_schema() -> None:
    with pytest.raises(ConfigError, match="unknown model kind"):
        load_train_config(data=_cfg(models=[{"name": "m", "kind": "TinyNet"}]))
    register_family(Family("TinyNet", "classification", lambda c, data, where: c))
    try:
        cfg = load_train_config(data=_cfg(models=[{"name": "m", "kind": "TinyNet"}]))
        assert cfg.task == "classification" and cfg.export_model == "m"
    finally:
        FAMILIES.pop("TinyNet")


def test_the_classic_decoder_alone_is_a_classification_run() -> None:
    cfg = load_train_config(data=_cfg(protocol={"kind": "loto", "baselines": ["lda"]},
                                      export={"model": "lda", "all_data": True}))
    assert cfg.task == "classification" and cfg.exportable == ["lda"] and cfg.export_model == "lda"
    with pytest.raises(ConfigError, match="at least one network"):
        load_train_config(data=_cfg())
    # ab runs refit a network or an ensemble on all trials, not a stack (its head needs held-out frames)
    assert load_train_config(data=_cfg(models=[{"name": "g", "kind": "GammaCNN"}], protocol={"kind": "ab"},
                                       export={"all_data": True})).export.all_data
    with pytest.raises(ConfigError, match="export.all_data"):
        load_train_config(data=_cfg(models=[{"name": "g", "kind": "GammaCNN"}],
                                    protocol={"kind": "ab", "ensemble": True, "stack_linear": True,
                                              "controls": ["linear"]},
                                    export={"model": "g_ensemble_linear", "all_data": True}))


def test_environment_overrides_a_training_field_and_a_bad_one_is_named() -> None:
    cfg = load_train_config(data=_cfg(models=[{"name": "m", "kind": "FrameMLP"}]),
                            environ={"RTDECODE_TRAIN_OPTIM__EPOCHS": "3"})
    assert cfg.optim.epochs == 3
    with pytest.raises(ConfigError, match="RTDECODE_TRAIN_OPTIM__EPOCHS"):
        load_train_config(data=_cfg(models=[{"name": "m", "kind": "FrameMLP"}]),
                          environ={"RTDECODE_TRAIN_OPTIM__EPOCHS": "zero"})
