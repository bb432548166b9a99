"""Splitting and selection logic of the training protocols, the LDA baseline's features, data helpers."""

from __future__ import annotations

import numpy as np
import pytest

from rtdecode.decoders.lda import LDA
from rtdecode.dsp.td import td_features
from rtdecode.errors import ConfigError
from rtdecode.io.labelled import block_trials, shuffle_trials
from rtdecode.io.recording import Recording
from rtdecode.nn.datasets import flexemg_chain, grid_spec
from rtdecode.nn.protocols import (
    groups_of_five,
    leave_one_trial_out,
    select_ab,
    shuffle_frames,
    skip_mask,
)


def test_groups_of_five_assigns_three_train_then_a_then_b_per_group() -> None:
    trials = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]
    s = groups_of_five(trials)
    assert s["train"] == [11, 12, 13, 16, 17, 18, 21, 22]
    assert s["a"] == [14, 19]
    assert s["b"] == [15, 20]
    assert sorted(s["train"] + s["a"] + s["b"]) == trials  # a partition
    # no randomisation: the same trials every time
    assert groups_of_five(trials) == s


def test_groups_of_five_needs_five_distinct_trials() -> None:
    with pytest.raises(ConfigError, match="at least 5 trials"):
        groups_of_five([1, 2, 3, 4])
    with pytest.raises(ConfigError, match="repeat"):
        groups_of_five([1, 2, 3, 4, 4])


def test_leave_one_trial_out_each_trial_tested_once_with_next_as_validation() -> None:
    trials = [1, 2, 3, 4, 5]
    folds = leave_one_trial_out(trials)
    assert [f.test for f in folds] == trials
    assert [f.val for f in folds] == [(2,), (3,), (4,), (5,), (1,)]
    for f in folds:
        assert f.test not in f.train and not set(f.val) & set(f.train)
        assert sorted((f.test, *f.val, *f.train)) == trials
    two = leave_one_trial_out(trials, val_trials=2, folds=[5])
    assert two[0].test == 5 and two[0].val == (1, 2) and two[0].train == (3, 4)


def test_leave_one_trial_out_rejects_unknown_folds_and_too_few_trials() -> None:
    with pytest.raises(ConfigError, match="not trial ids"):
        leave_one_trial_out([1, 2, 3], folds=[7])
    with pytest.raises(ConfigError, match="at least 3"):
        leave_one_trial_out([1, 2])


def _att(train_a: float, a: float, b_of_amax: float, train_b: float, b: float, a_of_bmax: float) -> dict:
    return {"amax": {"train": train_a, "a": a, "b": b_of_amax},
            "bmax": {"train": train_b, "a": a_of_bmax, "b": b}}


def test_select_ab_chooses_on_train_plus_validation_and_reports_the_other_set() -> None:
    attempts = [
        _att(0.9, 0.5, 0.99, 0.9, 0.5, 0.99),   # best test scores, but not chosen
        _att(0.8, 0.8, 0.40, 0.7, 0.6, 0.30),   # Amax: 0.8 + 0.8 = 1.6 (highest)
        _att(0.5, 0.6, 0.10, 0.8, 0.9, 0.20),   # Bmax: 0.8 + 0.9 = 1.7 (highest)
    ]
    sel = select_ab(attempts)
    assert sel["amax_attempt"] == 1 and sel["amax_b"] == pytest.approx(0.40)
    assert sel["bmax_attempt"] == 2 and sel["bmax_a"] == pytest.approx(0.20)
    assert sel["score"] == pytest.approx(0.30)


def test_select_ab_skips_diverged_attempts() -> None:
    bad = _att(float("nan"), float("nan"), 0.9, float("-inf"), 0.0, 0.9)
    good = _att(0.1, 0.1, 0.2, 0.1, 0.1, 0.3)
    assert select_ab([bad, good])["amax_attempt"] == 1


def test_shuffle_frames_permutes_only_masked_frames() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    mask = np.zeros(10, dtype=bool)
    mask[2:8] = True
    y = shuffle_frames(x, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(y[~mask], x[~mask])
    assert sorted(map(tuple, y[mask])) == sorted(map(tuple, x[mask]))  # same frames, new order
    assert not np.array_equal(y[mask], x[mask])
    np.testing.assert_array_equal(y[:, 1] - y[:, 0], 1)  # frames move whole


def test_skip_mask_and_block_trials() -> None:
    assert skip_mask(5, 2).tolist() == [False, False, True, True, True]
    assert skip_mask(3, 0).all()
    ids = block_trials(105, 10.0, 2.0)  # 20-sample blocks, last 5-sample block joins the previous
    assert ids[0] == 1 and ids[19] == 1 and ids[20] == 2 and ids[-1] == 5
    assert np.bincount(ids)[1:].tolist() == [20, 20, 20, 20, 25]


def test_grid_spec_and_flexemg_chain_follow_seed_004() -> None:
    amap = np.array([[2, 1], [3, 0]])
    assert grid_spec(amap) == {"kind": "grid", "shape": [2, 2], "order": [1, 0, 2, -1]}
    chain = flexemg_chain(np.arange(1, 65).reshape(16, 4))
    assert chain[0] == {"kind": "butter", "btype": "bandstop", "order": 2, "cutoff_hz": [45.0, 55.0]}
    gain, offset = chain[1]["gain"], chain[1]["offset"]
    assert (-2.5 - offset) * gain == pytest.approx(0.0) and (2.5 - offset) * gain == pytest.approx(1.0)
    assert chain[2] == {"kind": "clip", "min_value": 0.0, "max_value": 1.0}
    assert chain[3]["shape"] == [16, 4]


def _td_reference(x: np.ndarray, window: int, thr: float) -> np.ndarray:
    """Direct per-window computation of MAV, WL, ZC, SSC (windows ending at t, zero history)."""
    t_n, c = x.shape
    out = np.zeros((t_n, 4 * c))
    for t in range(t_n):
        lo = max(0, t - window + 1)
        for ch in range(c):
            seg = x[lo:t + 1, ch]
            out[t, ch] = np.abs(seg).mean()
            wl = zc = ssc = 0.0
            for i in range(lo, t + 1):
                if i >= 1:
                    d = x[i, ch] - x[i - 1, ch]
                    wl += abs(d)
                    zc += float(x[i, ch] * x[i - 1, ch] < 0 and abs(d) >= thr)
                if i >= 2:  # slope change at i-1, known at i
                    left, right = x[i - 1, ch] - x[i - 2, ch], x[i - 1, ch] - x[i, ch]
                    ssc += float(left * right > 0 and (abs(left) >= thr or abs(right) >= thr))
            out[t, c + ch], out[t, 2 * c + ch], out[t, 3 * c + ch] = wl, zc, ssc
    return out


def test_td_features_match_a_direct_computation_and_are_causal() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3))
    f = td_features(x, 8, 0.3)
    np.testing.assert_allclose(f, _td_reference(x, 8, 0.3), atol=1e-9)
    x2 = x.copy()
    x2[40:] = 100.0  # the future does not change the past
    np.testing.assert_allclose(td_features(x2, 8, 0.3)[:40], f[:40])


def test_lda_separates_gaussian_classes() -> None:
    rng = np.random.default_rng(1)
    means = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0]])
    y = rng.integers(0, 3, 600)
    X = means[y] + rng.standard_normal((600, 3))
    lda = LDA().fit(X[:400], y[:400])
    assert np.mean(lda.predict(X[400:]) == y[400:]) > 0.85
    assert lda.decision_function(X[:5]).shape == (5, 3)


def test_shuffle_trials_keeps_each_trial_whole_and_reorders_them() -> None:
    trial = np.repeat([3, 1, 2, 7], [4, 2, 3, 5])
    x = np.arange(14, dtype=np.float32)[:, None] * [1.0, -1.0]
    y = np.column_stack([trial, np.arange(14)]).astype(np.float32)
    rec = Recording(x=x, fs=50.0, y=y, target_names=["trial", "i"],
                    meta={"trial_id": trial, "trial_starts": np.array([0, 4, 6, 9]), "file": "f"})
    out, tr = shuffle_trials(rec, trial, np.random.default_rng(1))
    assert sorted(out.y[:, 1].tolist()) == list(range(14))  # every sample once
    np.testing.assert_array_equal(out.y[:, 0], tr)  # targets travel with their samples
    np.testing.assert_array_equal(out.meta["trial_id"], tr)
    np.testing.assert_array_equal(out.x[:, 0], out.y[:, 1])
    starts = np.flatnonzero(np.r_[True, tr[1:] != tr[:-1]])
    assert len(starts) == 4  # each trial stays one contiguous block
    assert [int(t) for t in tr[starts]] != [3, 1, 2, 7]  # in another order (seeded)
    np.testing.assert_allclose(out.t, np.arange(14) / 50.0)
    assert "trial_starts" not in out.meta and out.meta["trial_order"] == "shuffled"
