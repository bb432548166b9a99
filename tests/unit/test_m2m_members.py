"""The shipped M2M-Net's members (``[export] split``): the same split for all, or a committee
early-stopped on the folds of the calibration pulses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from rtdecode.errors import ConfigError  # noqa: E402
from rtdecode.nn.m2m.config import load_m2m_config  # noqa: E402
from rtdecode.nn.m2m.protocol import member_splits  # noqa: E402

TINY = Path(__file__).resolve().parents[2] / "configs" / "train" / "m2m_tiny.toml"


def _split() -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(3).permutation(np.arange(0, 200, 2))  # 100 calibration pulses
    return np.sort(order[10:]), np.sort(order[:10])


def test_same_split_gives_every_member_the_studys_split() -> None:
    fit, val = _split()
    out = member_splits(fit, val, 3, "same", seed=0)
    assert len(out) == 3 and all(f is fit and v is val for f, v in out)


@pytest.mark.parametrize("members", [2, 7, 10])
def test_folds_partition_the_calibration_pulses(members: int) -> None:
    fit, val = _split()
    calib = np.sort(np.concatenate([fit, val]))
    out = member_splits(fit, val, members, "folds", seed=5)
    assert len(out) == members
    vals = np.concatenate([v for _, v in out])
    np.testing.assert_array_equal(np.sort(vals), calib)  # each pulse early-stops exactly one member
    for f, v in out:
        assert len(v) in (len(calib) // members, len(calib) // members + 1)
        np.testing.assert_array_equal(np.sort(np.concatenate([f, v])), calib)
        assert not np.intersect1d(f, v).size
    again = member_splits(fit, val, members, "folds", seed=5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(out, again, strict=True))
    other = member_splits(fit, val, members, "folds", seed=6)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(out, other, strict=True))


def test_folds_with_one_member_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "one.toml"
    text = TINY.read_text()
    text = text.replace("members = 2", "members = 1").replace('split = "folds"', "")
    cfg.write_text(text + '\nsplit = "folds"\n')
    with pytest.raises(ConfigError, match="export.members"):
        load_m2m_config(cfg)
