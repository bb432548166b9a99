"""Session tables, seed 001's scores (eqs. 7, 9–11) and the baselines M2M-Net must beat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.errors import DataError
from rtdecode.metrics import aicc, bic, compare_nrmse, nrmse, sigma2_ml
from rtdecode.tms.m2m_baselines import MeanPerIntensity, NearestMapped, VolumeRidge
from rtdecode.tms.m2m_data import MinMax
from rtdecode.tms.session_table import read_table

HEADER = "pulse,x_mm,y_mm,z_mm,nx,ny,nz,dx,dy,dz,intensity_mso,preactivated,FDI_uv,APB_uv\n"


def test_scores_follow_the_paper() -> None:
    y = np.array([[1.0, 0.0], [0.0, 2.0]])
    yhat = np.array([[0.5, 0.0], [0.0, 1.0]])
    assert nrmse(y, yhat) == pytest.approx(np.sqrt((0.25 + 1.0) / 5.0))
    assert np.isnan(nrmse(np.zeros((2, 2)), yhat))
    s2 = sigma2_ml(y, yhat)
    assert s2 == pytest.approx(1.25 / 4)
    assert bic(s2, 4, 1) == pytest.approx(4 * np.log(s2) + np.log(4))
    assert aicc(s2, 4, 1) == pytest.approx(4 * np.log(s2) + 4 * 5 / 1)
    assert aicc(s2, 100, 200) < 100 * np.log(s2)  # p > Nk − 2: the correction turns negative, as in the paper
    assert np.isnan(aicc(s2, 4, 2))


def test_paired_bootstrap_tells_a_real_gap_from_noise() -> None:
    rng = np.random.default_rng(3)
    y = rng.uniform(0.2, 1.0, (800, 4))
    good = y + rng.normal(0, 0.10, y.shape)
    worse = y + rng.normal(0, 0.12, y.shape)
    c = compare_nrmse(y, good, worse)
    assert c.model == pytest.approx(nrmse(y, good)) and c.diff == pytest.approx(c.model - c.baseline)
    assert c.lo <= c.diff <= c.hi < 0 and c.model_better and c.rows == 800
    flipped = compare_nrmse(y, worse, good)  # the same draws: the interval mirrors
    assert flipped.lo == pytest.approx(-c.hi) and flipped.hi == pytest.approx(-c.lo)
    assert not flipped.model_better
    twin = y + rng.normal(0, 0.10, y.shape)  # as good as `good`: the interval straddles zero
    t = compare_nrmse(y, twin, good)
    assert t.lo < 0 < t.hi and not t.model_better
    few = compare_nrmse(y[:20], good[:20], worse[:20])  # too few rows to resolve the same gap
    assert few.hi - few.lo > 3 * (c.hi - c.lo)
    assert compare_nrmse(y, good, worse, seed=1).to_json()["ci"] != c.to_json()["ci"]


def test_minmax_round_trip() -> None:
    x = np.array([[0.0, 10.0], [5.0, 30.0]])
    mm = MinMax.fit(x, per_column=True)
    np.testing.assert_allclose(mm.apply(x), [[0, 0], [1, 1]])
    np.testing.assert_allclose(mm.invert(mm.apply(x)), x)
    assert float(MinMax.fit(x, per_column=False).hi) == 30.0


def test_table_reading_and_its_errors(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text(HEADER + "0,1,2,90,0,0,1,1,0,0,50,,100,20\n1,3,2,90,0,0,1,1,0,0,55,FDI,300,40\n")
    t = read_table(p)
    assert t.muscles == ["FDI", "APB"] and len(t) == 2
    assert t.preactivated.tolist() == [False, True]
    np.testing.assert_allclose(t.coil_pose(1).center, [0.003, 0.002, 0.090])
    assert t.stimulus_features().shape == (2, 10)
    rmt = tmp_path / "rmt.csv"
    rmt.write_text(HEADER.replace("intensity_mso", "intensity_rmt") + "0,1,2,90,0,0,1,1,0,0,120,,100,20\n")
    with pytest.raises(DataError, match="rmt_mso"):
        read_table(rmt)
    assert read_table(rmt, rmt_mso=40.0).intensity_mso[0] == pytest.approx(48.0)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "0,1,2,x,0,0,1,1,0,0,50,,100,20\n")
    with pytest.raises(DataError, match="z_mm"):
        read_table(bad)
    (tmp_path / "nomuscle.csv").write_text("pulse,x_mm\n0,1\n")
    with pytest.raises(DataError, match="missing"):
        read_table(tmp_path / "nomuscle.csv")


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Responses that depend on position and intensity, plus a 'volume' that encodes them."""
    rng = np.random.default_rng(seed)
    pos = np.column_stack([rng.uniform(-10, 10, (n, 2)), np.full(n, 90.0)])
    inten = rng.choice([44.0, 48.0, 52.0, 56.0], n)
    gain = (inten - 40.0) / 16.0
    y = np.column_stack([gain * np.exp(-((pos[:, 0] - 2) ** 2 + pos[:, 1] ** 2) / 40),
                         gain * np.exp(-((pos[:, 0] + 4) ** 2 + (pos[:, 1] - 3) ** 2) / 40)])
    grid = np.linspace(-12, 12, 9)
    vol = gain[:, None, None] * np.exp(-((grid[None, :, None] - pos[:, 0, None, None]) ** 2
                                        + (grid[None, None, :] - pos[:, 1, None, None]) ** 2) / 30)
    return pos, inten, y + 0.02 * rng.standard_normal(y.shape), vol.reshape(n, -1)


def test_baselines_rank_as_expected_on_structured_data() -> None:
    pos, inten, y, vol = _synthetic(400, 0)
    tp, ti, ty, tv = _synthetic(200, 1)
    mean = nrmse(ty, MeanPerIntensity().fit(inten, y).predict(ti))
    nm = NearestMapped().fit(pos, inten, y)
    near = nrmse(ty, nm.predict(tp, ti))
    ridge = nrmse(ty, VolumeRidge().fit(vol, y).predict(tv))
    assert near < mean and ridge < mean  # position matters; both baselines use it
    assert nm.k > 1  # noise makes averaging neighbours pay (chosen by leave-one-out)
    assert (VolumeRidge().fit(vol, y).predict(tv) >= 0).all()
