"""The virtual TMS subject, its protocols and signals, and recruitment-curve fitting."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rtdecode.errors import DataError
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.tms.config import MeasureConfig
from rtdecode.tms.mapping import fixed_protocol, mapping_protocol
from rtdecode.tms.measure import MepMeasurer, measure_recording
from rtdecode.tms.recruitment import boltzmann, fit_recruitment
from rtdecode.tms.simulate import TmsSimulator, write_table
from rtdecode.tms.subject import MUSCLES, VirtualSubject


@pytest.fixture(scope="module")
def subject() -> VirtualSubject:
    return VirtualSubject(0)


def test_subject_recruits_sigmoidally_and_focally(subject: VirtualSubject) -> None:
    hs = subject.hotspot()
    rmt = subject.resting_motor_threshold()
    assert 25.0 < rmt < 70.0  # %MSO, the range of real subjects
    fdi = MUSCLES.index("FDI")
    meps = [subject.expected_mep(subject.drive(subject.pose_at(*hs), rmt * p / 100))[fdi]
            for p in (90, 100, 120, 140, 180)]
    assert meps[0] < 50.0 <= meps[1] < meps[2] < meps[3] < meps[4]  # monotonic, 50 µV at RMT
    far = subject.expected_mep(subject.drive(subject.pose_at(hs[0] + 25, hs[1]), rmt * 1.2))[fdi]
    assert far < 0.2 * meps[2]  # moving the coil 25 mm loses most of the hand response
    prox = subject.expected_mep(subject.drive(subject.pose_at(hs[0] + 18, hs[1] + 3), rmt * 1.4))
    hand = subject.expected_mep(subject.drive(subject.pose_at(*hs), rmt * 1.4))
    assert prox[MUSCLES.index("BIC")] > hand[MUSCLES.index("BIC")]  # somatotopy


def test_rendering_is_chunk_invariant_and_matches_the_truth(subject: VirtualSubject) -> None:
    def sim() -> TmsSimulator:
        return TmsSimulator(subject, fixed_protocol(*subject.hotspot(), 130.0, 5), isi_s=1.0,
                            seed=4, preactivation_prob=0.4)

    a = sim()
    rec = a.recording(12000)
    b = sim()
    rng = np.random.default_rng(0)
    parts, n = [], 0
    while n < 12000:
        k = int(min(rng.integers(1, 700), 12000 - n))
        parts.append(b.render(k))
        n += k
    np.testing.assert_array_equal(np.vstack(parts), rec.x)
    times, labels = rec.meta["markers"]
    assert len(labels) == 5 and json.loads(labels[2])["pulse"] == 2
    np.testing.assert_array_equal(np.round(times * 2000).astype(int), a.pulse_samples)
    res = measure_recording(rec.x, rec.t, times, MepMeasurer(MeasureConfig(), 2000.0, 15, 1.0))
    for r, trial in zip(res, a.trials, strict=True):
        big = trial.response.mep_uv > 200
        # measured p2p = true p2p within the background EMG (and tonic EMG when pre-activated)
        err = np.abs(r.values[big, 0] - trial.response.mep_uv[big])
        assert (err < np.where(trial.preactivated[big], 600.0, 40.0)).all()
        pre = (r.channel_flags & EventFlags.PREACTIVATED) != 0
        np.testing.assert_array_equal(pre, trial.preactivated)


def test_mapping_protocol_and_synergies(subject: VirtualSubject, tmp_path: Path) -> None:
    sim = TmsSimulator(subject, mapping_protocol(subject.hotspot(), np.random.default_rng(2),
                                                 intensities_rmt=(120.0, 140.0), adaptive=15),
                       seed=1, preactivation_prob=0.0)
    while sim.plan_next():
        pass
    assert len(sim.trials) == 2 * (49 + 15) and sim.end_sample is not None
    assert [t.stimulus.intensity_rmt for t in sim.trials[:49]] == [120.0] * 49
    grid = {(round(t.stimulus.u_mm, 6), round(t.stimulus.v_mm, 6)) for t in sim.trials[:49]}
    assert len(grid) == 49
    mep = np.log1p(np.array([t.response.mep_uv for t in sim.trials]))
    c = np.corrcoef(mep.T)
    same = c[MUSCLES.index("FDI"), MUSCLES.index("APB")]
    other = c[MUSCLES.index("FDI"), MUSCLES.index("DEL")]
    assert same > other  # muscles of one synergy co-vary more
    path = tmp_path / "session.csv"
    write_table(sim, str(path))
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(sim.trials) and float(rows[3]["FDI_uv"]) == pytest.approx(
        sim.trials[3].response.mep_uv[0], abs=0.01)


def test_recruitment_fit_recovers_known_parameters() -> None:
    rng = np.random.default_rng(5)
    x = np.repeat(np.arange(30.0, 62.0, 3.0), 20)
    y = boltzmann(x, 3000.0, 45.0, 3.0) * np.exp(0.2 * rng.standard_normal(x.size))
    fit = fit_recruitment(x, y)
    assert abs(fit.i50 - 45.0) < 1.0 and abs(fit.k - 3.0) < 0.6
    assert abs(fit.plateau_uv - 3000.0) < 300.0 and fit.plateau_in_range
    assert fit.r2 > 0.8 and fit.r2_loio > 0.7 and fit.n_intensities == 11
    expected_thr = 45.0 - 3.0 * np.log(3000.0 / 50.0 - 1.0)
    assert abs(fit.threshold - expected_thr) < 1.5 and fit.threshold_in_range
    assert fit.empirical_threshold in (33.0, 36.0)
    assert abs(fit.slope_uv_per_unit - 3000.0 / 12.0) < 60.0
    with pytest.raises(DataError, match="3 intensities"):
        fit_recruitment([40.0, 40.0, 50.0], [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="finite"):
        fit_recruitment([40.0, 45.0, 50.0], [1.0, np.nan, 3.0])


def test_mean_mep_is_the_mean_of_respond(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mean_mep`` (quadrature over the excitability noise) is what ``respond`` averages to — and
    near threshold, where the recruitment curve bends, clearly not the noise-free MEP."""
    subj = VirtualSubject(0)
    pose = subj.pose_at(*subj.hotspot())
    d = subj.drive(pose, 50.0)
    monkeypatch.setattr(subj, "drive", lambda *_: d)  # the same pulse 40,000 times: field computed once
    rng = np.random.default_rng(1)
    draws = np.array([subj.respond(pose, 50.0, rng).mep_uv for _ in range(40_000)])
    se = draws.std(axis=0) / np.sqrt(len(draws))
    z_mean = np.abs(draws.mean(axis=0) - subj.mean_mep(pose, 50.0)) / se
    z_noise_free = np.abs(draws.mean(axis=0) - subj.expected_mep(d)) / se
    assert z_mean.max() < 4.5, z_mean
    assert z_noise_free.max() > 8.0, z_noise_free
