"""``rtdecode m2m train|map|predict``: M2M-Net (seed 001) — TMS coil pose → every muscle's MEP.

``train`` runs the study of a config (Table 1 / Table 2 and the baselines), exports and
verifies the shipped model; ``map`` draws a model's predicted MEP per muscle over a grid of
candidate coil poses; ``predict`` scores a model on a mapping session table (docs/m2m.md).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``m2m`` subcommand (``train``, ``map``, ``predict``)."""
    p = subparsers.add_parser("m2m", help="M2M-Net: predict every muscle's MEP from the TMS coil pose",
                              description="M2M-Net of seed 001 (docs/m2m.md).")
    sub = p.add_subparsers(dest="m2m_command", metavar="ACTION", required=True)
    t = sub.add_parser("train", help="run a config's study, export and verify the shipped model")
    t.add_argument("config", help="training config (.toml), e.g. configs/train/m2m_sim.toml")
    t.add_argument("--out", help="output folder (default: the config's out_dir, else out/m2m/<name>)")
    t.add_argument("--threads", type=int, help="torch CPU threads (overrides the config)")
    t.add_argument("--no-export", action="store_true", help="run the study only")
    t.set_defaults(func=run_train)
    m = sub.add_parser("map", help="predicted MEP per muscle over a grid of candidate coil poses")
    m.add_argument("model", help="M2M-Net model (.onnx)")
    m.add_argument("--span-mm", type=float, default=30.0, help="grid width, mm (default 30)")
    m.add_argument("--step-mm", type=float, default=2.0, help="grid step, mm (default 2)")
    m.add_argument("--intensity-mso", type=float, help="intensity, %%MSO (default: mid training range)")
    m.add_argument("--centre-mm", type=float, nargs=3, help="grid centre (head frame, mm; default: "
                   "the middle of the trained coil positions)")
    m.add_argument("--truth-subject", type=int, help="also draw this virtual subject's noise-free map "
                   "and report the correlation (simulator models)")
    m.add_argument("--out-dir", default="out/m2m_map", help="output folder")
    m.set_defaults(func=run_map)
    q = sub.add_parser("predict", help="predict every pulse of a mapping session table and score it")
    q.add_argument("model", help="M2M-Net model (.onnx)")
    q.add_argument("table", help="session table (CSV: pulse, pose, intensity, <muscle>_uv)")
    q.add_argument("--rmt-mso", type=float, help="resting motor threshold, %%MSO (intensity_rmt tables)")
    q.add_argument("--out", help="CSV of the predictions")
    q.set_defaults(func=run_predict)
    return p


def run_train(args: argparse.Namespace) -> int:
    """``rtdecode m2m train``."""
    from rtdecode.nn.m2m.config import load_m2m_config
    from rtdecode.nn.m2m.run import train_from_config

    over = {"threads": args.threads} if args.threads else None
    cfg = load_m2m_config(args.config, over)
    out = Path(args.out) if args.out else (cfg.out_dir or Path("out/m2m") / cfg.name)
    res = train_from_config(cfg, out, export=not args.no_export, config_name=str(args.config))
    print((out / "table1.md").read_text(encoding="utf-8"))
    sh = res.get("shipped")
    if sh is None:
        return 0
    for h, v in sh["heads"].items():
        print(f"model {h}: NRMSE on {sh['pulses']} held-out pulses {v['nrmse_held_out']:.4f} vs best "
              f"baseline ({sh['best_baseline']}) {v['best_baseline_nrmse']:.4f}, difference "
              f"{v['diff']:+.4f} [95 % {v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]: "
              f"{'beats it' if v['beats_baseline'] else 'does NOT beat it (do not ship it)'}")
    print(f"model: {sh['path']}; verify: {'PASS' if sh['verify']['ok'] else 'FAIL'}")
    return 0 if sh["verify"]["ok"] else 1


def run_map(args: argparse.Namespace) -> int:
    """``rtdecode m2m map``."""
    from rtdecode.tms.m2m_map import plot_maps, predict_map, subject_map
    from rtdecode.tms.m2m_model import M2mModel

    if args.step_mm <= 0 or args.span_mm <= 0:
        raise ConfigError("--span-mm and --step-mm must be positive", "e.g. --span-mm 30 --step-mm 2")
    model = M2mModel(args.model)
    mm = predict_map(model, args.span_mm, args.step_mm, args.intensity_mso,
                     None if args.centre_mm is None else np.asarray(args.centre_mm))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = None
    if args.truth_subject is not None:
        from rtdecode.tms.subject import VirtualSubject

        truth = subject_map(VirtualSubject(args.truth_subject), mm)
    arrays = {"offsets_mm": mm.offsets_mm, "centres_mm": mm.centres_mm, "mep_uv": mm.mep_uv,
              "muscles": np.array(mm.muscles), "intensity_mso": np.asarray(mm.intensity_mso),
              "flags": mm.flags}
    if truth is not None:
        arrays["truth_uv"] = truth
    np.savez(out / "map.npz", **arrays)  # type: ignore[arg-type]
    png = plot_maps(mm, out / "map.png", truth=truth)
    best = []
    for i, m in enumerate(mm.muscles):
        a, b = np.unravel_index(mm.mep_uv[..., i].argmax(), mm.mep_uv.shape[:2])
        best.append(f"{m}: ({mm.offsets_mm[a]:+.0f}, {mm.offsets_mm[b]:+.0f}) mm, "
                    f"{mm.mep_uv[a, b, i]:.0f} µV")
    print(f"predicted {mm.mep_uv.shape[0]}x{mm.mep_uv.shape[1]} poses at {mm.intensity_mso:.1f} %MSO; "
          f"{int((mm.flags != 0).sum())} flagged (outside the trained range)")
    print("largest predicted MEP at (along, across the current):\n  " + "\n  ".join(best))
    if truth is not None:
        r = [float(np.corrcoef(mm.mep_uv[..., i].ravel(), truth[..., i].ravel())[0, 1])
             for i in range(len(mm.muscles))]
        print("correlation with the noise-free map per muscle: " +
              ", ".join(f"{m} {v:.2f}" for m, v in zip(mm.muscles, r, strict=True)))
    print(f"wrote {png} and {out / 'map.npz'}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``rtdecode m2m predict``."""
    from rtdecode.metrics import nrmse
    from rtdecode.tms.m2m_model import M2mModel
    from rtdecode.tms.session_table import read_table

    model = M2mModel(args.model)
    table = read_table(args.table, args.rmt_mso)
    idx = [table.muscles.index(m) for m in model.muscles if m in table.muscles]
    if len(idx) != len(model.muscles):
        raise ConfigError(f"the table's muscles {table.muscles} do not include the model's {model.muscles}",
                          "use a table with every muscle the model predicts")
    pred = np.stack([model.predict(table.coil_pose(i), float(table.intensity_mso[i])).primary_uv
                     for i in range(len(table))])
    y = table.mep_uv[:, idx]
    ok = ~table.preactivated
    sc = model.meta.scaling
    lo, span = np.asarray(sc.output_lo), np.maximum(np.asarray(sc.output_hi) - sc.output_lo, 1e-12)
    score = nrmse((y[ok] - lo) / span, (pred[ok] - lo) / span)
    print(f"{len(table)} pulses ({int(ok.sum())} without pre-activation): NRMSE {score:.3f} "
          f"(scaled, eq. 7), {nrmse(y[ok], pred[ok]):.3f} (µV)")
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["pulse"] + [f"{m}_pred_uv" for m in model.muscles])
            for p, row in zip(table.pulse, pred, strict=True):
                w.writerow([int(p)] + [f"{v:.2f}" for v in row])
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
