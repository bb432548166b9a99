"""Seed 002's simulation experiment: Kalman and ANN fusion of three decoders on simulated cortex.

Protocol (White et al. 2010, PLoS ONE 5:e9493, as far as the paper describes it)
-------------------------------------------------------------------------------
Per trial, a new simulated subject (:class:`~rtdecode.sources.simulator.CortexSimulator`:
50 cosine-tuned neurons with random preferred directions, Poisson spikes, a random smooth
2-D trajectory) and five independent trajectories of it:

1. decoder training: ``good_steps`` (3000) steps for the good condition, an independent
   ``poor_steps`` (1500) for the poor one;
2. fusion training (``fusion_steps``) and fusion validation (``fusion_val_steps``, for the
   ANN's early stopping) — disjoint from the decoders' training data;
3. test (``test_steps``, 3000 in the paper).

The three decoders (Kalman filter, Wiener filter over 4 lags, population vector) are fitted
on the condition's training set and run causally on the other sets; the Kalman fusion filter
(least-squares ``A, W, H, Q``) and the ANN (one tanh layer with as many units as inputs) are
fitted on the decoders' outputs for the fusion sets; everything is scored on the test set by
the RMS error of the decoded 2-D velocity.

One paper time step is one spike-count bin (``bin_ms``, 50 ms by default): the simulator
runs at ``sim_rate_hz`` and its per-sample Poisson counts are summed per bin — a sum of
Poisson counts is Poisson with the bin-integrated rate, so the sample rate only sets how
finely the rate is integrated (the velocity's bandwidth is below 1 Hz). The decoded target
is the bin's mean velocity.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.experiments.common import DEFAULT_OUT, DecoderBank, environment, mean_se, rms, write_json
from rtdecode.fusion import ANNFusion, KalmanFusion
from rtdecode.fusion.model import NoiseModel
from rtdecode.sources.simulator import CortexSimulator

logger = logging.getLogger(__name__)

__all__ = ["SimConfig", "run_fusion_sim", "run_trial", "simulate_binned"]

SINGLE = ("kalman", "wiener", "population_vector")
#: Fusion methods: seed 002's Kalman fusion (white measurement noise), with adaptive noise,
#: the AR(1)-error extension (fixed and adaptive), and the ANN.
KF_VARIANTS: dict[str, tuple[NoiseModel, bool]] = {
    "kf_fusion": ("white", False), "kf_fusion_adaptive": ("white", True),
    "kf_fusion_ar1": ("ar1", False), "kf_fusion_ar1_adaptive": ("ar1", True)}
FUSED = (*KF_VARIANTS, "ann_fusion")
CONDITIONS = ("good", "poor")


@dataclass
class SimConfig:
    """Parameters of the simulation experiment (defaults follow seed 002)."""

    n_neurons: int = 50
    bin_ms: float = 50.0
    sim_rate_hz: float = 200.0
    good_steps: int = 3000
    poor_steps: int = 1500
    fusion_steps: int = 3000
    fusion_val_steps: int = 1000
    test_steps: int = 3000
    wiener_lags: int = 4
    pv_lags: int = 1
    ann_hidden: int | None = None
    ann_restarts: int = 2
    ann_weight_decay: float = 1e-4
    plot_steps: int = 200
    simulator: dict[str, Any] = field(default_factory=dict)

    @property
    def factor(self) -> int:
        """Simulator samples per bin."""
        return max(1, int(round(self.bin_ms * self.sim_rate_hz / 1000.0)))

    @property
    def dt_s(self) -> float:
        """Bin width, s."""
        return self.factor / self.sim_rate_hz


def simulate_binned(cfg: SimConfig, subject_seed: int, seed: int,
                    steps: int) -> tuple[np.ndarray, np.ndarray]:
    """One trajectory of a simulated subject, binned.

    Parameters
    ----------
    cfg : SimConfig
    subject_seed : int
        Seed of the neurons' tuning.
    seed : int
        Seed of the trajectory and the spikes.
    steps : int
        Bins.

    Returns
    -------
    counts : float64 (steps, n_neurons)
        Spike count of each neuron per bin.
    velocity : float64 (steps, 2)
        Mean hand velocity over each bin, cm/s.
    """
    sim = CortexSimulator(n_neurons=cfg.n_neurons, rate_hz=cfg.sim_rate_hz, seed=seed,
                          subject_seed=subject_seed, **cfg.simulator)
    f = cfg.factor
    spikes, kin = sim.generate(steps * f)
    counts = spikes.reshape(steps, f, cfg.n_neurons).sum(axis=1, dtype=np.float64)
    velocity = kin[:, 2:4].reshape(steps, f, 2).mean(axis=1, dtype=np.float64)
    return counts, velocity


def _condition(cfg: SimConfig, train: tuple[np.ndarray, np.ndarray], fus: tuple[np.ndarray, np.ndarray],
               val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], seed: int,
               keep_traces: bool) -> dict[str, Any]:
    bank = DecoderBank(wiener_lags=cfg.wiener_lags, pv_lags=cfg.pv_lags).fit(*train)
    out_f = bank.predict(fus[0])
    out_v = bank.predict(val[0])
    out_t = bank.predict(test[0])
    y_test = test[1]
    res: dict[str, Any] = {"rms": {name: rms(out_t[name] - y_test) for name in SINGLE}}
    fused: dict[str, np.ndarray] = {}
    Z_test = np.concatenate([out_t[n] for n in SINGLE], axis=1)
    for label, (noise_model, adapt) in KF_VARIANTS.items():
        kf = KalmanFusion.fit(fus[1], [out_f[n] for n in SINGLE], dt_s=cfg.dt_s, decoder_names=SINGLE,
                              state_names=("vx", "vy"), noise_model=noise_model, adapt_noise=adapt)
        fused[label] = kf.filter(Z_test)
    ann = ANNFusion(cfg.ann_hidden, weight_decay=cfg.ann_weight_decay, restarts=cfg.ann_restarts, seed=seed)
    ann.fit(np.concatenate([out_f[n] for n in SINGLE], axis=1), fus[1],
            np.concatenate([out_v[n] for n in SINGLE], axis=1), val[1])
    fused["ann_fusion"] = ann.predict(Z_test)
    for name, yhat in fused.items():
        res["rms"][name] = rms(yhat - y_test)
    best_single = min(res["rms"][n] for n in SINGLE)
    res["best_single"] = min(SINGLE, key=lambda n: res["rms"][n])
    res["beats_best"] = {name: bool(res["rms"][name] < best_single) for name in FUSED}
    res["rms_true_velocity"] = rms(y_test)
    res["errors"] = error_structure({n: out_t[n] - y_test for n in SINGLE})
    if keep_traces:
        k = min(cfg.plot_steps, y_test.shape[0])
        res["traces"] = {"true": y_test[:k], **{n: out_t[n][:k] for n in SINGLE},
                         **{n: fused[n][:k] for n in fused}}
    return res


def error_structure(errors: dict[str, np.ndarray]) -> dict[str, Any]:
    """How the decoders' errors are correlated: in time and with each other.

    Parameters
    ----------
    errors : dict of str to float (n, 2)
        Each decoder's error (output − truth).

    Returns
    -------
    dict
        ``lag1_autocorrelation`` per decoder and ``cross_correlation`` per pair (both averaged
        over the two velocity components). Seed 002's fusion model assumes both are 0.
    """
    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(a.shape[1])]))

    names = list(errors)
    return {"lag1_autocorrelation": {n: corr(errors[n][1:], errors[n][:-1]) for n in names},
            "cross_correlation": {f"{a}~{b}": corr(errors[a], errors[b])
                                  for k, a in enumerate(names) for b in names[k + 1:]}}


def run_trial(cfg: SimConfig, trial_seed: int, keep_traces: bool = False) -> dict[str, Any]:
    """One trial: a new subject, both conditions.

    Parameters
    ----------
    cfg : SimConfig
    trial_seed : int
        Seed of the trial (subject, trajectories, spikes, ANN initialisation).
    keep_traces : bool
        Keep the first ``plot_steps`` test steps of every output (for the figure).

    Returns
    -------
    dict
        ``{"seed", "good": {...}, "poor": {...}}``: RMS error (cm/s) per method, the best single
        decoder and whether each fusion beats it.
    """
    seeds = np.random.SeedSequence(trial_seed).generate_state(7)
    subject = int(seeds[0])
    good = simulate_binned(cfg, subject, int(seeds[1]), cfg.good_steps)
    poor = simulate_binned(cfg, subject, int(seeds[2]), cfg.poor_steps)
    fus = simulate_binned(cfg, subject, int(seeds[3]), cfg.fusion_steps)
    val = simulate_binned(cfg, subject, int(seeds[4]), cfg.fusion_val_steps)
    test = simulate_binned(cfg, subject, int(seeds[5]), cfg.test_steps)
    out: dict[str, Any] = {"seed": int(trial_seed)}
    for cond, train in (("good", good), ("poor", poor)):
        out[cond] = _condition(cfg, train, fus, val, test, int(seeds[6]), keep_traces)
    return out


def _run_trial_star(args: tuple[SimConfig, int, bool]) -> dict[str, Any]:
    return run_trial(*args)


def summarise(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± standard error of the RMS error per method and the fraction of trials each fusion
    beats the best single decoder, per condition."""
    out: dict[str, Any] = {}
    for cond in CONDITIONS:
        rows = [t[cond] for t in trials]
        methods = list(SINGLE) + list(FUSED)
        best = np.array([min(r["rms"][n] for n in SINGLE) for r in rows])
        out[cond] = {
            "rms_cm_s": {m: mean_se([r["rms"][m] for r in rows]) for m in methods},
            "relative_rms": {m: mean_se([r["rms"][m] / r["rms_true_velocity"] for r in rows])
                             for m in methods},
            "best_single_rms_cm_s": mean_se(best),
            "fraction_beats_best_single": {m: float(np.mean([r["beats_best"][m] for r in rows]))
                                           for m in FUSED},
            "improvement_over_best_single_pct": {
                m: mean_se(100.0 * (best - np.array([r["rms"][m] for r in rows])) / best) for m in FUSED},
            "best_single_counts": {n: int(sum(r["best_single"] == n for r in rows)) for n in SINGLE},
            "error_lag1_autocorrelation": {n: mean_se([r["errors"]["lag1_autocorrelation"][n] for r in rows])
                                           for n in SINGLE},
            "error_cross_correlation": {p: mean_se([r["errors"]["cross_correlation"][p] for r in rows])
                                        for p in rows[0]["errors"]["cross_correlation"]},
        }
    return out


def run_fusion_sim(trials: int = 100, seed: int = 0, out_dir: Path | None = None, *, jobs: int = 1,
                   cfg: SimConfig | None = None, plot: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``fusion_sim.json`` (and ``fusion_sim.png``) to ``out_dir``.

    Parameters
    ----------
    trials : int
        Random trials (new subject and trajectories each).
    seed : int
        Master seed (trial ``j`` uses ``SeedSequence(seed).spawn(trials)[j]``).
    out_dir : Path, optional
        Output folder (default ``bench/results/fusion``).
    jobs : int
        Worker processes (1 = in this process).
    cfg : SimConfig, optional
    plot : bool
        Write the figure (needs matplotlib).

    Returns
    -------
    dict
        What the JSON holds: config, environment, timing, summary, per-trial RMS errors.
    """
    cfg = cfg or SimConfig()
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    trial_seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(trials)]
    tasks = [(cfg, s, j == 0) for j, s in enumerate(trial_seeds)]
    t0 = time.perf_counter()
    if jobs <= 1:
        results = []
        for j, task in enumerate(tasks):
            results.append(_run_trial_star(task))
            logger.info("trial %d/%d done (%.1f s)", j + 1, trials, time.perf_counter() - t0)
    else:
        # fork: workers share the loaded modules (and the one-thread BLAS the CLI sets up)
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
            results = []
            for j, r in enumerate(ex.map(_run_trial_star, tasks, chunksize=1)):
                results.append(r)
                if (j + 1) % 10 == 0 or j + 1 == trials:
                    logger.info("trial %d/%d done (%.1f s)", j + 1, trials, time.perf_counter() - t0)
    elapsed = time.perf_counter() - t0
    traces = {cond: results[0][cond].pop("traces") for cond in CONDITIONS}
    summary = summarise(results)
    data = {
        "experiment": "fusion-sim (seed 002: White et al. 2010)",
        "config": {**asdict(cfg), "trials": trials, "seed": seed, "jobs": jobs, "dt_s": cfg.dt_s},
        "environment": environment(),
        "elapsed_s": elapsed,
        "summary": summary,
        "trials": [{"seed": r["seed"], **{c: {"rms_cm_s": r[c]["rms"], "best_single": r[c]["best_single"],
                                              "rms_true_velocity": r[c]["rms_true_velocity"]}
                                          for c in CONDITIONS}} for r in results],
    }
    write_json(data, out_dir / "fusion_sim.json")
    if plot:
        from rtdecode.experiments.plots import plot_fusion_sim

        plot_fusion_sim(traces, results, cfg.dt_s, out_dir / "fusion_sim.png")
    data["traces"] = traces
    return data
