"""Seed 001's study: input (E-field / firing) × mapper depth (3 / 6) × head, against baselines.

::

    per input kind:   autoencoder on the training session's volumes (inputs only) → codes
      per repeat:     9:1 calibration / test split of the training session; output min-max
                      scaling and NMF synergies fitted on the calibration pulses; baselines
        per depth, per model:
                      Direct, Synergy and (on Synergy's calibration errors) the residual net
                      → NRMSE (eq. 7) on the split's test pulses and on every held-out
                      session, BIC / AICc (eqs. 10–11) on the calibration pulses, parameters

Scores are on the min-max scaled responses (the calibration pulses' range per muscle, as in
the paper); ``nrmse_uv`` is the same on µV. The autoencoder sees the training session's test
pulses' *volumes* (never their MEPs) — the held-out sessions it never sees at all, which is
why they carry the headline numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtdecode.metrics import aicc, bic, nrmse, sigma2_ml
from rtdecode.nn.m2m.config import M2mTrainConfig
from rtdecode.nn.m2m.fit import VolumePrep, encode, fit_autoencoder, fit_mapper, predict
from rtdecode.nn.m2m.model import Encoder, Mapper, ThroughBasis, count_params
from rtdecode.nn.m2m.sessions import Session, load_sessions, splits
from rtdecode.nn.m2m.synergy import Synergies, fit_synergies
from rtdecode.tms.m2m_baselines import MeanPerIntensity, NearestMapped, VolumeRidge
from rtdecode.tms.m2m_data import MinMax
from rtdecode.tms.session_table import MappingTable
from rtdecode.tms.volume import VolumeModel

logger = logging.getLogger(__name__)

__all__ = ["AutoencoderRun", "Shipped", "Targets", "member_splits", "run_study", "train_member",
           "volume_ridge"]

HEADS = ("direct", "synergy", "both")


@dataclass
class AutoencoderRun:
    """An input kind's trained encoder, its input prep, code scaling and scaled codes."""

    kind: str
    encoder: Encoder
    prep: VolumePrep
    code_scale: MinMax
    codes: np.ndarray  #: scaled codes of the training session (N, *code)
    test_codes: list[np.ndarray]  #: scaled codes of each held-out session
    history: dict[str, Any]


@dataclass
class Targets:
    """A repeat's output scaling, scaled responses and synergies (calibration-fitted)."""

    scale: MinMax
    y: np.ndarray  #: scaled responses of the training session (N, k)
    test_y: list[np.ndarray]
    synergies: Synergies
    activations: np.ndarray  #: synergy targets (N, r), valid on the calibration rows


@dataclass
class Shipped:
    """What the exported model is made of."""

    ae: AutoencoderRun
    targets: Targets
    members: list[dict[str, Mapper]]  #: the ensemble (one set of mappers per member)
    depth: int
    scores: dict[str, Any]
    table: MappingTable  #: the training session's usable pulses
    test: np.ndarray  #: the training session's test pulses (split 0)
    #: every baseline's scaled predictions on split 0: (test pulses (T, k), [held-out session (N, k)])
    baselines: dict[str, tuple[np.ndarray, list[np.ndarray]]] = field(default_factory=dict)


def _autoencoder(kind: str, train: Session, tests: list[Session], cfg: M2mTrainConfig) -> AutoencoderRun:
    firing_cfg = cfg.volume.firing if kind == "firing" else None
    prep = VolumePrep.fit(train.mags, firing_cfg)
    order = np.random.default_rng([cfg.seed, 1]).permutation(len(train.mags))
    n_val = max(1, int(round(cfg.protocol.val_fraction * len(order))))
    val = np.sort(order[:n_val])
    ae, hist = fit_autoencoder(train.mags, np.sort(order[n_val:]), val, prep,
                               cfg.autoencoder.channels, cfg.autoencoder.optim, cfg.seed)
    zero_mse = float(np.mean([np.square(prep(train.mags[val[i:i + 16]]).numpy()).mean()
                              for i in range(0, len(val), 16)]))  # MSE of reconstructing zeros
    raw = encode(ae.encoder, train.mags, prep)
    code_scale = MinMax.fit(raw, per_column=False)
    tests_raw = [encode(ae.encoder, s.mags, prep) for s in tests]
    return AutoencoderRun(kind, ae.encoder, prep, code_scale, code_scale.apply(raw),
                          [code_scale.apply(c) for c in tests_raw],
                          {**hist.to_json(), "zero_mse_val": zero_mse,
                           "params_encoder": count_params(ae.encoder),
                           "params_decoder": count_params(ae.decoder)})


def _targets(train: Session, tests: list[Session], calib: np.ndarray, rank: int, seed: int) -> Targets:
    scale = MinMax.fit(train.table.mep_uv[calib], per_column=True)
    y = scale.apply(train.table.mep_uv)
    syn = fit_synergies(y[calib], rank, seed)
    act = np.zeros((len(y), rank))
    act[calib] = syn.activations
    return Targets(scale, y, [scale.apply(s.table.mep_uv) for s in tests], syn, act)


def _flat(prep: VolumePrep, mags: np.ndarray, keep: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Scaled volumes flattened to the voxels ``keep``, float32 (N, len(keep))."""
    return np.concatenate([prep(mags[i:i + chunk]).numpy().reshape(len(mags[i:i + chunk]), -1)[:, keep]
                           for i in range(0, len(mags), chunk)])


def volume_ridge(prep: VolumePrep, mags: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Ridge regression on the scaled volumes (voxels nonzero in any of ``mags``, (N, X, Y, Z)) to
    the scaled responses ``y`` (N, k); returns volumes → predictions (M, k)."""
    keep = np.flatnonzero((mags > 0).any(axis=0).ravel())
    ridge = VolumeRidge().fit(_flat(prep, mags, keep), y)
    return lambda m: ridge.predict(_flat(prep, m, keep))


Predictions = dict[str, tuple[np.ndarray, list[np.ndarray]]]


def _baselines(kind: str, first: bool, train: Session, tests: list[Session], ae: AutoencoderRun,
               tg: Targets, calib: np.ndarray, test: np.ndarray, repeat: int
               ) -> tuple[list[dict[str, Any]], Predictions]:
    """Scores of the baselines fitted on the calibration pulses (ridge per input kind), and their
    scaled predictions on the test pulses and on each held-out session."""
    t = train.table
    preds: Predictions = {}
    if first:
        mpi = MeanPerIntensity().fit(t.intensity_mso[calib], tg.y[calib])
        preds[mpi.name] = (mpi.predict(t.intensity_mso[test]),
                           [mpi.predict(s.table.intensity_mso) for s in tests])
        nm = NearestMapped().fit(t.pose[calib, :3], t.intensity_mso[calib], tg.y[calib])
        preds[f"{nm.name} (k={nm.k})"] = (nm.predict(t.pose[test, :3], t.intensity_mso[test]),
                                           [nm.predict(s.table.pose[:, :3], s.table.intensity_mso)
                                            for s in tests])
    ridge = volume_ridge(ae.prep, train.mags[calib], tg.y[calib])
    preds[f"{VolumeRidge.name} ({kind})"] = (ridge(train.mags[test]), [ridge(s.mags) for s in tests])
    rows = []
    for name, (p_test, p_held) in preds.items():
        rows.append({"baseline": name, "input": kind if "ridge" in name else None, "repeat": repeat,
                     **_nrmse_block(tg, test, p_test, p_held, tests)})
    return rows, preds


def _nrmse_block(tg: Targets, test: np.ndarray, p_test: np.ndarray, p_held: list[np.ndarray],
                 tests: list[Session]) -> dict[str, Any]:
    """NRMSE (scaled and µV) on the split's test pulses and on each held-out session."""
    out: dict[str, Any] = {"nrmse_test": nrmse(tg.y[test], p_test),
                           "nrmse_test_uv": nrmse(tg.scale.invert(tg.y[test]), tg.scale.invert(p_test))}
    for s, y, p in zip(tests, tg.test_y, p_held, strict=True):
        out[f"nrmse_{s.name}"] = nrmse(y, p)
        out[f"nrmse_{s.name}_uv"] = nrmse(s.table.mep_uv, tg.scale.invert(p))
    return out


def _train_setting(ae: AutoencoderRun, tg: Targets, fit: np.ndarray, val: np.ndarray, depth: int,
                   cfg: M2mTrainConfig, seed: int) -> tuple[dict[str, Mapper], dict[str, Any]]:
    """Direct, Synergy and the residual net of Both for one setting."""
    mc, opt = cfg.mapper, cfg.mapper.optim
    code_shape = tuple(ae.codes.shape[1:])
    k, r = tg.y.shape[1], tg.activations.shape[1]

    def make(n_out: int, out: str = "sigmoid", hidden: str = mc.hidden) -> Mapper:
        return Mapper(code_shape, n_out, depth, out, hidden, mc.channels, mc.dense, mc.dropout)  # type: ignore[arg-type]

    hist: dict[str, Any] = {}
    direct, h = fit_mapper(make(k), ae.codes, tg.y, fit, val, opt, seed, f"{ae.kind} d{depth} direct")
    hist["direct"] = h.to_json()
    syn = make(r)
    what = f"{ae.kind} d{depth} synergy"
    if mc.synergy_loss == "muscles":
        basis = torch.tensor(tg.synergies.basis, dtype=torch.float32)
        h = fit_mapper(ThroughBasis(syn, basis), ae.codes, tg.y, fit, val, opt, seed + 1, what)[1]
    else:
        h = fit_mapper(syn, ae.codes, tg.activations, fit, val, opt, seed + 1, what)[1]
    hist["synergy"] = h.to_json()
    resid = tg.y - predict(syn, ae.codes) @ tg.synergies.basis
    res, h = fit_mapper(make(k, "tanh", mc.residual_hidden), ae.codes, resid, fit, val, opt, seed + 2,
                        f"{ae.kind} d{depth} residual")
    hist["residual"] = h.to_json()
    return {"direct": direct, "synergy": syn, "residual": res}, hist


def head_predictions(members: list[dict[str, Mapper]], basis: np.ndarray, codes: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """Scaled responses (N, k) of each head for scaled codes (the mean over the members)."""
    out: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    for m in members:
        syn = predict(m["synergy"], codes) @ basis
        out["direct"].append(predict(m["direct"], codes))
        out["synergy"].append(syn)
        out["both"].append(syn + predict(m["residual"], codes))
    return {h: np.mean(v, axis=0) for h, v in out.items()}


def _score(ae: AutoencoderRun, tg: Targets, members: list[dict[str, Mapper]], calib: np.ndarray,
           test: np.ndarray, tests: list[Session]) -> dict[str, Any]:
    """NRMSE, BIC, AICc and parameters (of all members) per head."""
    basis = tg.synergies.basis
    p_all = head_predictions(members, basis, ae.codes)
    p_held = [head_predictions(members, basis, c) for c in ae.test_codes]
    params = {"direct": count_params(*(m["direct"] for m in members)),
              "synergy": count_params(*(m["synergy"] for m in members)),
              "both": count_params(*(m[n] for m in members for n in ("synergy", "residual")))}
    out = {}
    n_values = len(calib) * tg.y.shape[1]
    for h in HEADS:
        s2 = sigma2_ml(tg.y[calib], p_all[h][calib])
        out[h] = {"params": params[h], "sigma2_calib": s2, "bic": bic(s2, n_values, params[h]),
                  "aicc": aicc(s2, n_values, params[h]), "nrmse_calib": nrmse(tg.y[calib], p_all[h][calib]),
                  **_nrmse_block(tg, test, p_all[h][test], [p[h] for p in p_held], tests)}
    return out


def member_splits(fit: np.ndarray, val: np.ndarray, members: int, how: str, seed: int
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, val) pulse indices for each member of the shipped ensemble (``export.split``).

    ``"same"``: every member on the study's split. ``"folds"``: the calibration pulses
    (``fit`` ∪ ``val``) shuffled into ``members`` folds; member i is early-stopped on fold i
    and fitted on the others, so every calibration pulse is fitted by ``members − 1`` members.
    """
    if how == "same":
        return [(fit, val)] * members
    calib = np.sort(np.concatenate([fit, val]))
    folds = np.array_split(np.random.default_rng([seed, 16]).permutation(calib), members)
    return [(np.setdiff1d(calib, f), np.sort(f)) for f in folds]


def train_member(ae: AutoencoderRun, tg: Targets, fit: np.ndarray, val: np.ndarray, depth: int,
                 cfg: M2mTrainConfig, i: int, reseed: bool = True) -> dict[str, Mapper]:
    """Member ``i`` of an ensemble, seeded ``cfg.seed + 7919 i``; with ``reseed`` torch's global
    RNG too, so the mappers' initial weights do not depend on what ran before."""
    seed = cfg.seed + 7919 * i
    if reseed:
        torch.manual_seed(seed)
    return _train_setting(ae, tg, fit, val, depth, cfg, seed)[0]


def _ensemble(ae: AutoencoderRun, tg: Targets, first: dict[str, Mapper], depth: int,
              split: tuple[np.ndarray, np.ndarray, np.ndarray], train: Session, tests: list[Session],
              cfg: M2mTrainConfig) -> Shipped:
    """The shipped model: ``export.members`` sets of mappers. With ``export.split = "same"`` the
    study's first, then new seeds; with ``"folds"`` a committee, member i seeded ``seed + 7919 i``."""
    fit, val, test = split
    ex = cfg.export
    pairs = member_splits(fit, val, ex.members, ex.split, cfg.seed)
    members = [first] if ex.split == "same" else []
    for i in range(len(members), ex.members):
        members.append(train_member(ae, tg, *pairs[i], depth, cfg, i, reseed=ex.split == "folds"))
    calib = np.sort(np.concatenate([fit, val]))
    return Shipped(ae, tg, members, depth, _score(ae, tg, members, calib, test, tests), train.table, test)


def run_study(cfg: M2mTrainConfig, out_dir: Path, progress: Callable[[dict[str, Any]], object] | None = None
              ) -> tuple[dict[str, Any], Shipped | None]:
    """Run the whole protocol; returns the results (JSON-able) and the parts of the shipped model.

    ``progress(results)`` is called after every trained setting (e.g. to save partial results).
    """
    vm = VolumeModel(cfg.volume, cache_size=0)
    train, tests = load_sessions(cfg.data, cfg.protocol, vm, out_dir)
    proto, ex = cfg.protocol, cfg.export
    sp = splits(len(train.table), proto, cfg.seed)
    res: dict[str, Any] = {"sessions": {"train": {"name": train.name, "pulses": len(train.table)},
                                        "held_out": [{"name": s.name, "pulses": len(s.table)}
                                                     for s in tests]},
                           "splits": [{"fit": len(a), "val": len(b), "test": len(c)} for a, b, c in sp],
                           "autoencoders": {}, "settings": [], "baselines": []}
    shipped, split0 = None, {}
    for ki, kind in enumerate(proto.inputs):
        ae = _autoencoder(kind, train, tests, cfg)
        res["autoencoders"][kind] = ae.history
        for r, (fit, val, test) in enumerate(sp):
            calib = np.sort(np.concatenate([fit, val]))
            tg = _targets(train, tests, calib, proto.synergies, cfg.seed + r)
            rows, preds = _baselines(kind, ki == 0, train, tests, ae, tg, calib, test, r)
            res["baselines"] += rows
            if r == 0:
                split0.update(preds)
            for depth in proto.depths:
                for m in range(proto.models):
                    seed = cfg.seed + 1000 * r + 10 * m
                    mappers, hist = _train_setting(ae, tg, fit, val, depth, cfg, seed)
                    scores = _score(ae, tg, [mappers], calib, test, tests)
                    res["settings"].append({"input": kind, "depth": depth, "repeat": r, "model": m,
                                            "heads": scores, "history": hist})
                    if ex.enabled and (kind, depth, r, m) == (ex.input, ex.depth, 0, 0):
                        shipped = _ensemble(ae, tg, mappers, depth, (fit, val, test), train, tests, cfg)
                        res["shipped_scores"] = shipped.scores
                    if progress is not None:
                        progress(res)
    if shipped is not None:
        shipped.baselines = split0
    return res, shipped
