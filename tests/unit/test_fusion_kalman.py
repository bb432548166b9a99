"""Kalman decision fusion: least-squares fit, streaming == offline, out-of-sequence and
multi-rate inputs, exclusion of NaN / silent / failing decoders, adaptive noise, and a
hypothesis property test that the covariance stays symmetric positive definite."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtdecode.errors import StageError
from rtdecode.fusion import FusionModel, KalmanFusion, fit_fusion_model
from rtdecode.types import Flags

DT = 0.02
T0 = 1000.0
A_TRUE = np.array([[0.95, 0.10], [-0.10, 0.90]])
BLOCKS = (2, 2, 3)
NOISE = (0.2, 0.5, 1.0)


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Linear-Gaussian kinematics and three linear decoders with white noise."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 2))
    for t in range(1, n):
        X[t] = A_TRUE @ X[t - 1] + 0.3 * rng.standard_normal(2)
    Hs = [np.random.default_rng(100 + i).standard_normal((k, 2)) for i, k in enumerate(BLOCKS)]
    outs = [X @ H.T + 0.5 + s * rng.standard_normal((n, H.shape[0])) for H, s in zip(Hs, NOISE, strict=True)]
    return X, outs, Hs


@pytest.fixture(scope="module")
def train() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    return _synthetic(6000, 0)


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    return _synthetic(600, 1)


def _fuser(train: tuple, **kw) -> KalmanFusion:  # noqa: ANN003
    X, outs, _ = train
    return KalmanFusion.fit(X, outs, dt_s=DT, decoder_names=("a", "b", "c"), state_names=("vx", "vy"), **kw)


def _rms(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e ** 2)))


def test_fit_recovers_known_transition_and_observation_matrices(train: tuple) -> None:
    X, outs, Hs = train
    m = fit_fusion_model(X, outs, dt_s=DT)
    np.testing.assert_allclose(m.ssm.A, A_TRUE, atol=0.03)
    np.testing.assert_allclose(m.ssm.H, np.concatenate(Hs), atol=0.05)
    q = np.concatenate([np.full(k, s ** 2) for k, s in zip(BLOCKS, NOISE, strict=True)])
    np.testing.assert_allclose(np.diag(m.ssm.Q), q, rtol=0.08)
    np.testing.assert_allclose(np.diag(m.ssm.W), 0.09, rtol=0.08)
    assert m.blocks == BLOCKS


def test_fusion_beats_every_decoder_when_the_model_holds(train: tuple, test_set: tuple) -> None:
    f = _fuser(train, adapt_noise=False)
    X, outs, Hs = test_set
    fused = f.filter(np.concatenate(outs, axis=1))
    for o, H in zip(outs, Hs, strict=True):
        alone = np.linalg.lstsq(H, (o - 0.5).T, rcond=None)[0].T  # each decoder inverted on its own
        assert _rms(fused - X) < _rms(alone - X)


@pytest.mark.parametrize("noise_model", ["white", "ar1"])
@pytest.mark.parametrize("adapt", [False, True])
def test_streaming_equals_offline_on_a_synchronous_sequence(train: tuple, test_set: tuple, noise_model: str,
                                                            adapt: bool) -> None:
    f = _fuser(train, adapt_noise=adapt, noise_model=noise_model)
    Z = np.concatenate(test_set[1], axis=1)
    offline = f.filter(Z)
    rng = np.random.default_rng(3)
    streamed = np.empty_like(offline)
    order = [0, 1, 2]
    for t in range(Z.shape[0]):
        rng.shuffle(order)  # decoders of one frame arrive in any order
        for i in order:
            assert f.update(i, Z[t, f.model.block(i)], T0 + t * DT)
        est = f.estimate(T0 + t * DT)
        streamed[t] = est.x
        assert est.flags == Flags.OK and est.predicted_frames == 0
    np.testing.assert_allclose(streamed, offline, rtol=1e-9, atol=1e-9)


def _arrivals(n: int, rng: np.random.Generator, max_delay: int, every: tuple[int, ...]) -> list[tuple]:
    """(arrival time, decoder, frame) with each decoder's own rate and random latency."""
    out = []
    for i, k in enumerate(every):
        for t in range(0, n, k):
            out.append((t + rng.integers(0, max_delay + 1) + rng.random(), i, t))
    return sorted(out)


def test_out_of_order_asynchronous_inputs_equal_sorted_and_offline(train: tuple, test_set: tuple) -> None:
    f = _fuser(train, adapt_noise=False, history=64)
    Z = np.concatenate(test_set[1], axis=1)
    n = Z.shape[0]
    every = (1, 2, 3)  # decoders at full, half and a third of the frame rate
    rng = np.random.default_rng(7)
    arrivals = _arrivals(n, rng, max_delay=6, every=every)
    assert [a[2] for a in arrivals] != sorted(a[2] for a in arrivals)  # really out of order
    mask = np.zeros((n, 3), dtype=bool)
    for i, k in enumerate(every):
        mask[::k, i] = True
    offline = f.filter(Z, mask=mask)

    def feed(events: list[tuple]) -> np.ndarray:
        f.reset(t0=T0)
        out = np.full((n, 2), np.nan)
        done_upto = -1
        arrived = np.zeros((n, 3), dtype=bool)
        for _, i, t in events:
            assert f.update(i, Z[t, f.model.block(i)], T0 + t * DT)
            arrived[t, i] = True
            # frames whose measurements have all arrived are final: read them from the history
            while done_upto + 1 < n and (arrived[done_upto + 1] | ~mask[done_upto + 1]).all():
                done_upto += 1
                out[done_upto] = f.estimate(T0 + done_upto * DT).x
        return out

    in_arrival_order = feed(arrivals)
    in_source_order = feed(sorted(arrivals, key=lambda a: (a[2], a[1])))
    np.testing.assert_allclose(in_arrival_order, in_source_order, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(in_arrival_order, offline, rtol=1e-9, atol=1e-9)
    assert f.counts["too_old"].sum() == 0


def test_measurement_older_than_the_history_is_dropped_and_counted(train: tuple, test_set: tuple) -> None:
    f = _fuser(train, history=8)
    Z = np.concatenate(test_set[1], axis=1)
    for t in range(20):
        f.update(0, Z[t, :2], T0 + t * DT)
    assert not f.update(1, Z[2, 2:4], T0 + 2 * DT)
    assert f.counts["too_old"][1] == 1
    assert f.update(1, Z[15, 2:4], T0 + 15 * DT)  # within the history: fused


def test_nan_silent_and_failing_decoders_are_excluded_and_flagged(train: tuple, test_set: tuple) -> None:
    f = _fuser(train, stale_after_s=5 * DT)
    X, outs, _ = test_set
    n = X.shape[0]
    fused = np.empty((n, 2))
    records = {}
    for t in range(n):
        tt = T0 + t * DT
        z1 = outs[1][t].copy()
        if 100 <= t < 300:
            z1[0] = np.nan  # decoder b emits NaN for a while
        f.update(0, outs[0][t], tt, healthy=not (400 <= t < 450))  # decoder a reports failure
        f.update(1, z1, tt)
        if t < 200:  # decoder c goes silent for good
            f.update(2, outs[2][t], tt)
        est = f.estimate(tt)
        fused[t] = est.x
        records[t] = est
    assert np.isfinite(fused).all()
    assert records[50].active == (True, True, True) and not records[50].degraded
    assert records[150].active == (True, False, True) and records[150].flags & Flags.DEGRADED
    assert records[250].active == (True, False, False)  # c stale after 5 frames
    assert records[350].active == (True, True, False)  # b back after NaNs
    assert records[420].active == (False, True, False)
    assert records[500].active == (True, True, False)
    assert f.counts["nonfinite"][1] == 200 and f.counts["unhealthy"][0] == 50
    # the fused estimate stays useful with one decoder left
    assert _rms(fused[420:450] - X[420:450]) < 3 * _rms(fused[20:100] - X[20:100]) + 0.2


def test_all_decoders_silent_gives_a_finite_stale_prediction(train: tuple, test_set: tuple) -> None:
    f = _fuser(train, stale_after_s=3 * DT)
    Z = np.concatenate(test_set[1], axis=1)
    for t in range(50):
        for i in range(3):
            f.update(i, Z[t, f.model.block(i)], T0 + t * DT)
    x49, _ = f.posterior()
    est = f.estimate(T0 + 52 * DT)  # predict-only between measurements
    A, a = f.model.ssm.A, f.model.ssm.a
    expect = x49
    for _ in range(3):
        expect = A @ expect + a
    np.testing.assert_allclose(est.x, expect, rtol=1e-12)
    assert est.predicted_frames == 3 and not est.stale
    late = f.estimate(T0 + 60 * DT)
    assert late.stale and late.flags & Flags.STALE and np.isfinite(late.x).all()
    far = f.estimate(T0 + 1e4)  # a long gap: back to the prior, still finite
    np.testing.assert_allclose(far.x, f.model.ssm.x0)
    assert f.update(0, Z[0, :2], T0 + 1e4)  # and the filter restarts
    assert f.n_resets == 1


def test_adaptive_noise_raises_a_noisy_decoders_scale_and_lowers_its_influence(train: tuple) -> None:
    X, outs, _ = _synthetic(1500, 2)
    rng = np.random.default_rng(9)
    noisy = [o.copy() for o in outs]
    noisy[0] = noisy[0] + 3.0 * rng.standard_normal(noisy[0].shape)  # decoder a degrades (σ 0.2 -> 3)
    Z = np.concatenate(noisy, axis=1)
    fixed = _fuser(train, adapt_noise=False)
    adaptive = _fuser(train, adapt_noise=True, noise_tau_s=1.0)
    err = {}
    for name, f in (("fixed", fixed), ("adaptive", adaptive)):
        err[name] = _rms(f.filter(Z)[500:] - X[500:])
    for t in range(Z.shape[0] - 1):
        for i in range(3):
            adaptive.update(i, Z[t, adaptive.model.block(i)], T0 + t * DT)
            fixed.update(i, Z[t, fixed.model.block(i)], T0 + t * DT)
    assert adaptive.noise_scale[0] > 10.0
    assert (adaptive.noise_scale[1:] < 2.0).all()
    assert err["adaptive"] < 0.8 * err["fixed"]

    def influence(f: KalmanFusion) -> float:
        """Change of the fused estimate when decoder a's last output moves by one unit."""
        t = Z.shape[0] - 1
        g = copy.deepcopy(f)
        for i in (1, 2):
            f.update(i, Z[t, f.model.block(i)], T0 + t * DT)
            g.update(i, Z[t, g.model.block(i)], T0 + t * DT)
        f.update(0, Z[t, :2], T0 + t * DT)
        g.update(0, Z[t, :2] + 1.0, T0 + t * DT)
        return float(np.linalg.norm(g.estimate(T0 + t * DT).x - f.estimate(T0 + t * DT).x))

    assert influence(adaptive) < 0.3 * influence(fixed)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4),
       ks=st.lists(st.integers(1, 3), min_size=1, max_size=3), radius=st.floats(0.1, 1.05),
       cond=st.floats(0.0, 6.0))
def test_covariance_stays_symmetric_positive_definite(seed: int, d: int, ks: list[int], radius: float,
                                                      cond: float) -> None:
    rng = np.random.default_rng(seed)
    n = 250
    A = rng.standard_normal((d, d))
    A *= radius / max(float(np.max(np.abs(np.linalg.eigvals(A)))), 1e-9)

    def spd(k: int) -> np.ndarray:
        V, _ = np.linalg.qr(rng.standard_normal((k, k)))
        return (V * np.logspace(-cond, 0, k)) @ V.T

    W = spd(d)
    X = np.zeros((n, d))
    for t in range(1, n):
        X[t] = A @ X[t - 1] + rng.multivariate_normal(np.zeros(d), W)
    outs = []
    for k in ks:
        H = rng.standard_normal((k, d)) * 10 ** rng.uniform(-2, 2)
        outs.append(X @ H.T + rng.multivariate_normal(np.zeros(k), spd(k), size=n))
    f = KalmanFusion.fit(X, outs, dt_s=DT, adapt_noise=bool(seed % 2))
    Z = np.concatenate(outs, axis=1) * rng.uniform(0.5, 2.0)  # a mis-scaled test set
    for t in range(n):
        for i in rng.permutation(len(ks)):
            f.update(int(i), Z[t, f.model.block(int(i))], T0 + (t + rng.integers(0, 3)) * DT)
        _, P = f.posterior()
        assert np.isfinite(P).all()
        np.testing.assert_array_equal(P, P.T)
        np.linalg.cholesky(P)  # raises unless positive definite
        assert np.isfinite(f.estimate(T0 + t * DT).x).all()


def test_model_round_trips_through_json(train: tuple, test_set: tuple, tmp_path: Path) -> None:
    for noise_model in ("white", "ar1"):
        f = _fuser(train, noise_model=noise_model)
        path = f.model.save(tmp_path / f"fusion_{noise_model}.json")
        g = KalmanFusion(FusionModel.load(path))
        Z = np.concatenate(test_set[1], axis=1)
        np.testing.assert_allclose(g.filter(Z), f.filter(Z), rtol=1e-12, atol=1e-12)
        assert g.model.innovation_ratio == f.model.innovation_ratio


def test_wrong_inputs_are_refused_with_a_fix(train: tuple) -> None:
    f = _fuser(train)
    with pytest.raises(StageError, match="expects 2"):
        f.update(0, np.zeros(3), T0)
    with pytest.raises(StageError, match="out of range"):
        f.update(5, np.zeros(2), T0)
    with pytest.raises(StageError, match=r"expected \(n, 7\)"):
        f.filter(np.zeros((4, 6)))
