"""Fusion on real monkey M1/PMd spikes: the binned center-out reach data set.

Data: :func:`rtdecode.io.datasets.read_monkey_reach` (98 units, spike counts in 20 ms bins,
hand position (mm) and its backward-difference velocity (mm/s); 640 trials of ~0.45 s).

Protocol
--------
For each of ``splits`` random splits, the trials of each reach direction are shuffled and
divided (disjoint, by trial id) into decoder-training (``fractions[0]``), fusion-training
(``fractions[1]``) and held-out test trials (the rest); the last ``ann_val_fraction`` of the
fusion-training trials are the ANN's early-stopping validation set. The three decoders
(Kalman filter on ``px, py, vx, vy``; Wiener filter on the same; population vector on the
velocity) are fitted on the decoder-training trials and run causally, restarting at each
trial. The Kalman fusion filters and the ANN are fitted on the decoders' outputs for the
fusion-training trials and scored on the test trials by R² (position = mean over px, py;
velocity = mean over vx, vy; pooled over all held-out bins).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.experiments.common import (
    DEFAULT_OUT,
    DecoderBank,
    environment,
    mean_se,
    r2_per_column,
    write_json,
)
from rtdecode.experiments.fusion_sim import FUSED, KF_VARIANTS
from rtdecode.fusion import ANNFusion, KalmanFusion
from rtdecode.io.datasets import MONKEY_FS_HZ, read_monkey_reach

logger = logging.getLogger(__name__)

__all__ = ["MonkeyConfig", "default_data_dir", "run_fusion_monkey", "split_trials"]

SINGLE = ("kalman", "wiener", "population_vector")
KINEMATICS = ("px", "py", "vx", "vy")
VELOCITY_COLUMNS = (2, 3)


def default_data_dir() -> Path:
    """``$RTDECODE_SHARED_DATA/bmi_monkeyreach_binned`` or ``../shared/data/bmi_monkeyreach_binned``."""
    import os

    root = Path(os.environ.get("RTDECODE_SHARED_DATA",
                               str(Path(__file__).resolve().parents[3] / "shared" / "data")))
    return root / "bmi_monkeyreach_binned"


@dataclass
class MonkeyConfig:
    """Parameters of the monkey experiment."""

    fractions: tuple[float, float] = (0.5, 0.25)
    ann_val_fraction: float = 0.25
    wiener_lags: int = 10
    pv_lags: int = 4
    ann_hidden: int | None = None
    ann_restarts: int = 3
    ann_weight_decay: float = 1e-4
    plot_trials: int = 8


def split_trials(trial_id: np.ndarray, direction: np.ndarray, fractions: tuple[float, float],
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint decoder-training / fusion-training / test trial ids, stratified by direction.

    Returns
    -------
    three int64 arrays of trial ids
    """
    dec, fus, test = [], [], []
    for d in np.unique(direction):
        ids = np.unique(trial_id[direction == d])
        rng.shuffle(ids)
        n1 = int(round(fractions[0] * ids.size))
        n2 = int(round(fractions[1] * ids.size))
        dec.append(ids[:n1])
        fus.append(ids[n1:n1 + n2])
        test.append(ids[n1 + n2:])
    return np.concatenate(dec), np.concatenate(fus), np.concatenate(test)


def _rows(trial_id: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(trial_id, ids))


def _scores(y: np.ndarray, yhat: np.ndarray, cols: list[int]) -> dict[str, Any]:
    full = np.full(y.shape[1], np.nan)
    full[cols] = r2_per_column(y[:, cols], yhat)
    pos = None if not {0, 1} <= set(cols) else float(np.mean(full[:2]))
    return {"position": pos, "velocity": float(np.mean(full[2:4])),
            "per_component": {k: (None if np.isnan(v) else float(v))
                              for k, v in zip(KINEMATICS, full, strict=True)}}


def run_split(x: np.ndarray, y: np.ndarray, trial_id: np.ndarray, direction: np.ndarray, cfg: MonkeyConfig,
              seed: int, keep_paths: bool = False) -> dict[str, Any]:
    """One random split: fit decoders and fusions, score on the held-out trials."""
    rng = np.random.default_rng(seed)
    dec_ids, fus_ids, test_ids = split_trials(trial_id, direction, cfg.fractions, rng)
    n_val = max(1, int(round(cfg.ann_val_fraction * fus_ids.size)))
    fus_perm = rng.permutation(fus_ids)
    ann_tr_ids = fus_perm[:-n_val]  # the rest: the ANN's validation trials
    r_dec, r_fus, r_test = (_rows(trial_id, ids) for ids in (dec_ids, fus_ids, test_ids))
    bank = DecoderBank(wiener_lags=cfg.wiener_lags, pv_lags=cfg.pv_lags, velocity_columns=VELOCITY_COLUMNS)
    bank.fit(x[r_dec], y[r_dec], trial_id[r_dec])
    out_f = bank.predict(x[r_fus], trial_id[r_fus])
    out_t = bank.predict(x[r_test], trial_id[r_test])
    y_t = y[r_test]
    res: dict[str, Any] = {"seed": seed, "trials": {"decoder": int(dec_ids.size), "fusion": int(fus_ids.size),
                                                    "test": int(test_ids.size)}}
    scores = {n: _scores(y_t, out_t[n], bank.output_columns(n, 4)) for n in SINGLE}
    fused: dict[str, np.ndarray] = {}
    Z_test = np.concatenate([out_t[n] for n in SINGLE], axis=1)
    for label, (noise_model, adapt) in KF_VARIANTS.items():
        kf = KalmanFusion.fit(y[r_fus], [out_f[n] for n in SINGLE], dt_s=1.0 / MONKEY_FS_HZ,
                              segments=trial_id[r_fus], decoder_names=SINGLE, state_names=KINEMATICS,
                              noise_model=noise_model, adapt_noise=adapt)
        fused[label] = kf.filter(Z_test, segments=trial_id[r_test])
    Z_fus = np.concatenate([out_f[n] for n in SINGLE], axis=1)
    tr_rows = np.isin(trial_id[r_fus], ann_tr_ids)
    ann = ANNFusion(cfg.ann_hidden, weight_decay=cfg.ann_weight_decay, restarts=cfg.ann_restarts, seed=seed)
    ann.fit(Z_fus[tr_rows], y[r_fus][tr_rows], Z_fus[~tr_rows], y[r_fus][~tr_rows])
    fused["ann_fusion"] = ann.predict(Z_test)
    for name, yhat in fused.items():
        scores[name] = _scores(y_t, yhat, [0, 1, 2, 3])
    res["r2"] = scores
    best_pos = max(scores[n]["position"] for n in SINGLE if scores[n]["position"] is not None)
    best_vel = max(scores[n]["velocity"] for n in SINGLE)
    res["beats_best"] = {m: {"position": bool(scores[m]["position"] >= best_pos),
                             "velocity": bool(scores[m]["velocity"] >= best_vel)} for m in FUSED}
    if keep_paths:
        tid_t = trial_id[r_test]
        dir_t = direction[r_test]
        picked = []
        for dval in np.unique(dir_t)[:cfg.plot_trials]:
            tid = tid_t[dir_t == dval][0]
            rows = tid_t == tid
            picked.append({"true": y_t[rows], **{n: out_t[n][rows] for n in ("kalman", "wiener")},
                           **{n: fused[n][rows] for n in ("kf_fusion", "kf_fusion_ar1", "ann_fusion")}})
        res["paths"] = picked
    return res


def run_fusion_monkey(data_dir: Path | None = None, out_dir: Path | None = None, *, splits: int = 10,
                      seed: int = 0, cfg: MonkeyConfig | None = None, plot: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``fusion_monkey.json`` (and ``.png``) to ``out_dir``.

    Parameters
    ----------
    data_dir : Path, optional
        The ``bmi_monkeyreach_binned`` folder (default :func:`default_data_dir`).
    out_dir : Path, optional
        Default ``bench/results/fusion``.
    splits : int
        Random trial splits (results are mean ± standard error over splits).
    seed : int
        Master seed.

    Raises
    ------
    DataError
        When the folder is missing or malformed.
    """
    cfg = cfg or MonkeyConfig()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    rec = read_monkey_reach(data_dir)
    x = np.asarray(rec.x, dtype=np.float64)
    y = np.asarray(rec.y, dtype=np.float64)
    trial_id = np.asarray(rec.meta["trial_id"])
    direction = np.asarray(rec.meta["direction"])
    t0 = time.perf_counter()
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(splits)]
    results = [run_split(x, y, trial_id, direction, cfg, s, keep_paths=(j == 0)) for j, s in enumerate(seeds)]
    elapsed = time.perf_counter() - t0
    methods = list(SINGLE) + list(FUSED)
    summary: dict[str, Any] = {"r2": {}, "fraction_splits_fused_ge_best_single": {}}
    for m in methods:
        pos = [r["r2"][m]["position"] for r in results]
        summary["r2"][m] = {"position": None if pos[0] is None else mean_se(pos),
                            "velocity": mean_se([r["r2"][m]["velocity"] for r in results])}
    for m in FUSED:
        summary["fraction_splits_fused_ge_best_single"][m] = {
            k: float(np.mean([r["beats_best"][m][k] for r in results])) for k in ("position", "velocity")}
    for k in ("position", "velocity"):
        per_split = [max(r["r2"][n][k] for n in SINGLE if r["r2"][n][k] is not None) for r in results]
        summary.setdefault("best_single", {})[k] = mean_se(per_split)
    paths = results[0].pop("paths")
    data = {
        "experiment": "fusion-monkey (seed 002 fusion on real M1/PMd spikes)",
        "data": {"folder": str(data_dir), "bins": int(x.shape[0]), "units": int(x.shape[1]),
                 "trials": int(np.unique(trial_id).size), "bin_ms": 1000.0 / MONKEY_FS_HZ},
        "config": {**asdict(cfg), "splits": splits, "seed": seed},
        "environment": environment(),
        "elapsed_s": elapsed,
        "summary": summary,
        "splits": results,
    }
    write_json(data, out_dir / "fusion_monkey.json")
    if plot:
        from rtdecode.experiments.plots import plot_fusion_monkey

        r2_first = {m: {k: results[0]["r2"][m][k] for k in ("position", "velocity")} for m in methods}
        plot_fusion_monkey(paths, r2_first, out_dir / "fusion_monkey.png")
    data["paths"] = paths
    return data
