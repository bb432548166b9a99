"""Where M2M-Net's gap to ridge regression lies, on the study's sessions (docs/m2m.md).

The development tool behind docs/m2m.md ("Where the gap is"). On the sessions, split and
autoencoder of an M2M-Net training config (firing input) it reports, as scaled NRMSE (eq. 7) on
the split's test pulses and on each held-out session:

- ``oracle``      the virtual subject's own expected MEP for each pulse's pose and intensity
  (its pulse-to-pulse excitability noise integrated out, Gauss–Hermite): the noise floor no
  model fitted on MEPs can beat on average (simulated sessions only);
- ``ridge``       ridge regression on the firing volume (the study's best baseline) and on the
  autoencoder's code (whether the code keeps what a linear read-out needs), and the latter
  through a per-muscle monotone curve (:func:`isotonic_on_ridge`);
- ``ensemble``    ``--members`` sets of 3-layer mappers (Direct, Synergy, Both), the curve of the
  ensemble's NRMSE as members are added. ``--split same`` early-stops every member on the
  study's validation split (``rtdecode m2m train``'s export); ``--split folds`` early-stops
  member i on calibration fold i of ``--members`` folds and fits it on the others (a
  cross-validation committee: every calibration pulse is fitted by most members).
  ``--hidden`` sets ``[mapper] hidden``.

The autoencoder is trained once and cached in ``OUT/ae_firing.pt`` (~5–13 min on a 2-core VM).

``--bootstrap MODEL`` instead compares an exported model (e.g. the committee that
``rtdecode m2m train`` wrote) with ridge on the firing volume pulse by pulse: the scaled NRMSE
of both and a paired bootstrap (pulses resampled, 2,000 draws) of their difference, on each set
and on the held-out sessions pooled, so a margin can be told from sampling noise.

``--single INPUT:DEPTH`` instead trains one set of mappers of one study setting (e.g.
``efield:6``, seeded with the config's seed) and reports what the study reports for it:
parameters, BIC, AICc and NRMSE per head.

    python scripts/m2m_variants.py configs/train/m2m_sim.toml --out out/m2m/variants \\
        --members 5 --split same --hidden linear
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtdecode.metrics import compare_nrmse, nrmse
from rtdecode.nn.m2m import protocol as study
from rtdecode.nn.m2m.config import M2mTrainConfig, load_m2m_config
from rtdecode.nn.m2m.sessions import Session, load_sessions, splits
from rtdecode.tms.m2m_baselines import VolumeRidge
from rtdecode.tms.session_table import MappingTable
from rtdecode.tms.subject import VirtualSubject
from rtdecode.tms.volume import VolumeModel


def oracle_mep(subject: VirtualSubject, table: MappingTable) -> np.ndarray:
    """The subject's mean MEP (µV, (N, k)) for every pulse of a table (:meth:`VirtualSubject.mean_mep`)."""
    return np.stack([subject.mean_mep(table.coil_pose(i), float(table.intensity_mso[i]))
                     for i in range(len(table))])


class Scorer:
    """Scaled NRMSE on the split's test pulses and on each held-out session (and, for the
    ensembles of ``--split same``, on the validation pulses they were early-stopped on)."""

    def __init__(self, tg: study.Targets, test: np.ndarray, held: list[Session]) -> None:
        self.tg, self.test, self.names = tg, test, ["test"] + [s.name for s in held]

    def __call__(self, p_train: np.ndarray, p_held: list[np.ndarray], val: np.ndarray | None = None
                 ) -> dict[str, float]:
        y = [self.tg.y[self.test]] + list(self.tg.test_y)
        p = [p_train[self.test]] + list(p_held)
        out = {n: round(nrmse(a, b), 4) for n, a, b in zip(self.names, y, p, strict=True)}
        if val is not None:
            out["val"] = round(nrmse(self.tg.y[val], p_train[val]), 4)
        return out


def isotonic_on_ridge(code: list[np.ndarray], tg: study.Targets, calib: np.ndarray, score: Scorer
                      ) -> dict[str, float]:
    """Ridge on the code, then one monotone (isotonic) curve per muscle from ridge's 10-fold
    cross-fitted calibration predictions to the MEPs: a single-index model with a free link."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import KFold

    cross = np.zeros((len(code[0]), tg.y.shape[1]))
    for a, b in KFold(10, shuffle=True, random_state=0).split(calib):
        cross[calib[b]] = VolumeRidge().fit(code[0][calib[a]], tg.y[calib[a]]).predict(code[0][calib[b]])
    full = VolumeRidge().fit(code[0][calib], tg.y[calib])
    preds = [full.predict(c) for c in code]
    out = [np.zeros_like(p) for p in preds]
    for m in range(tg.y.shape[1]):
        curve = IsotonicRegression(out_of_bounds="clip").fit(cross[calib, m], tg.y[calib, m])
        for o, p in zip(out, preds, strict=True):
            o[:, m] = curve.predict(p[:, m])
    return score(out[0], out[1:])


def _autoencoder(cfg: M2mTrainConfig, train: Session, held: list[Session], out: Path,
                 kind: str = "firing") -> study.AutoencoderRun:
    path = out / f"ae_{kind}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    ae = study._autoencoder(kind, train, held, cfg)
    torch.save(ae, path)
    return ae


@dataclass
class Setup:
    """The study's sessions, first split, an input kind's autoencoder and the split's targets."""

    train: Session
    held: list[Session]
    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray
    calib: np.ndarray
    ae: study.AutoencoderRun
    tg: study.Targets

    @classmethod
    def load(cls, cfg: M2mTrainConfig, out: Path, kind: str = "firing") -> Setup:
        """Sessions (simulated into ``out`` when configured), split 0, the cached autoencoder."""
        torch.set_num_threads(cfg.threads)
        out.mkdir(parents=True, exist_ok=True)
        train, held = load_sessions(cfg.data, cfg.protocol, VolumeModel(cfg.volume, cache_size=0), out)
        fit, val, test = splits(len(train.table), cfg.protocol, cfg.seed)[0]
        calib = np.sort(np.concatenate([fit, val]))
        ae = _autoencoder(cfg, train, held, out, kind)
        tg = study._targets(train, held, calib, cfg.protocol.synergies, cfg.seed)
        return cls(train, held, fit, val, test, calib, ae, tg)


def bootstrap(cfg: M2mTrainConfig, out: Path, model: Path) -> dict[str, Any]:
    """Each head of an exported model against ridge on the firing volume, per set (see above)."""
    from rtdecode.tms.m2m_model import M2mModel

    st = Setup.load(cfg, out)
    m = M2mModel(model)
    ridge = study.volume_ridge(st.ae.prep, st.train.mags[st.calib], st.tg.y[st.calib])
    sets = [("test", st.train.mags[st.test], st.tg.y[st.test])]
    sets += [(s.name, s.mags, y) for s, y in zip(st.held, st.tg.test_y, strict=True)]
    res: dict[str, Any] = {"model": str(model), "config": cfg.name, "sets": {}}
    pooled: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = []
    for name, mags, y in sets:
        p_ridge = ridge(mags)
        runs = [m.run(mags[i:i + 32].astype(np.float32)) for i in range(0, len(mags), 32)]  # every head at once
        heads = {h: st.tg.scale.apply(np.concatenate([r[h] for r in runs])) for h in study.HEADS}
        res["sets"][name] = {h: compare_nrmse(y, p, p_ridge).to_json() for h, p in heads.items()}
        logging.info("%s: %s", name, res["sets"][name])
        if name != "test":
            pooled.append((y, heads, p_ridge))
    y_all, r_all = np.concatenate([p[0] for p in pooled]), np.concatenate([p[2] for p in pooled])
    res["sets"]["held-out pooled"] = {h: compare_nrmse(y_all, np.concatenate([p[1][h] for p in pooled]), r_all).to_json()
                                      for h in study.HEADS}
    (out / f"bootstrap-{model.stem}.json").write_text(json.dumps(res, indent=1))
    return res


def single(cfg: M2mTrainConfig, out: Path, setting: str) -> dict[str, Any]:
    """One model of the study setting ``INPUT:DEPTH``, scored as the study scores it."""
    kind, depth = setting.split(":")
    st = Setup.load(cfg, out, kind)
    torch.manual_seed(cfg.seed)
    mappers, hist = study._train_setting(st.ae, st.tg, st.fit, st.val, int(depth), cfg, cfg.seed)
    scores = study._score(st.ae, st.tg, [mappers], st.calib, st.test, st.held)
    res = {"config": cfg.name, "setting": setting, "heads": scores, "history": hist,
           "autoencoder": st.ae.history}
    (out / f"single-{kind}-{depth}.json").write_text(json.dumps(res, indent=1, default=float))
    return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every number of the module docstring for one config and variant."""
    cfg = load_m2m_config(args.config)
    cfg = cfg.model_copy(update={"mapper": cfg.mapper.model_copy(update={"hidden": args.hidden})})
    out = Path(args.out)
    st = Setup.load(cfg, out)
    ae, tg, calib, held = st.ae, st.tg, st.calib, st.held
    score = Scorer(tg, st.test, held)
    res: dict[str, Any] = {"config": args.config, "variant": vars(args), "ridge": {}, "ensemble": []}
    if cfg.data.simulate is not None:
        subj = VirtualSubject(cfg.data.simulate.subject)
        res["oracle"] = score(tg.scale.apply(oracle_mep(subj, st.train.table)),
                              [tg.scale.apply(oracle_mep(subj, s.table)) for s in held])
    flat = [c.reshape(len(c), -1) for c in [ae.codes, *ae.test_codes]]
    r = VolumeRidge().fit(flat[0][calib], tg.y[calib])
    res["ridge"]["code"] = score(r.predict(flat[0]), [r.predict(c) for c in flat[1:]])
    res["ridge"]["code_isotonic"] = isotonic_on_ridge(flat, tg, calib, score)
    (row,), _ = study._baselines("firing", False, st.train, held, ae, tg, calib, st.test, 0)  # ridge only
    res["ridge"]["volume"] = {n: round(row[f"nrmse_{n}"], 4) for n in score.names}
    preds: list[list[dict[str, np.ndarray]]] = []
    for i, (f, v) in enumerate(study.member_splits(st.fit, st.val, args.members, args.split, cfg.seed)):
        mappers = study.train_member(ae, tg, f, v, 3, cfg, i)  # as the export's committee
        preds.append([study.head_predictions([mappers], tg.synergies.basis, c)
                      for c in [ae.codes, *ae.test_codes]])
        mean = [{h: np.mean([p[j][h] for p in preds], axis=0) for h in study.HEADS} for j in range(len(flat))]
        on_val = st.val if args.split == "same" else None
        res["ensemble"].append({h: score(mean[0][h], [m[h] for m in mean[1:]], on_val) for h in study.HEADS})
        logging.info("%d members: %s", i + 1, res["ensemble"][-1])
        (out / f"variants-{args.split}-{args.hidden}.json").write_text(json.dumps(res, indent=1))
    return res


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--out", required=True, help="folder for the sessions, caches and results")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--split", choices=("same", "folds"), default="same")
    ap.add_argument("--hidden", choices=("relu", "linear"), default="relu")
    ap.add_argument("--single", metavar="INPUT:DEPTH", help="one model of a study setting instead")
    ap.add_argument("--bootstrap", metavar="MODEL", type=Path,
                    help="an exported model against ridge, with paired bootstrap intervals, instead")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = ap.parse_args()
    if args.bootstrap:
        res = bootstrap(load_m2m_config(args.config), Path(args.out), args.bootstrap)
        print(json.dumps(res["sets"], indent=1))  # noqa: T201
        return
    if args.single:
        cfg = load_m2m_config(args.config)
        print(json.dumps(single(cfg, Path(args.out), args.single)["heads"], indent=1, default=float))  # noqa: T201
        return
    res = run(args)
    print(json.dumps({k: res[k] for k in ("oracle", "ridge") if k in res}, indent=1))  # noqa: T201
    print(json.dumps(res["ensemble"][-1], indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
