"""``rtdecode m2m train CONFIG.toml``: the study, its report, the shipped model and its verification.

Writes into the output folder:

- ``results.json``: every model's scores and training curves, the baselines, the summary
  (mean ± sd per setting), timings and the machine;
- ``table1.md``: the summary as seed 001's Table 1 / Table 2 plus the baselines;
- ``<name>.onnx`` (+ ``<name>.torch.npz``): the shipped model (``[export]``), and the
  verdict of ``rtdecode verify`` on it; its metadata keeps the held-out scores.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.metrics import compare_nrmse, nrmse
from rtdecode.nn.m2m.config import M2mTrainConfig
from rtdecode.nn.m2m.export import export_m2m, stimulus_bounds
from rtdecode.nn.m2m.protocol import HEADS, Shipped, head_predictions, run_study
from rtdecode.nn.m2m.report import markdown, model_card, summarise

logger = logging.getLogger(__name__)

__all__ = ["RULE", "shipped_verdict", "train_from_config"]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if np.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, Path):
        return str(v)
    return v


#: how the shipped model is judged (docs/m2m.md, "A committee that fits")
RULE = ("every held-out pulse pooled (the test pulses and the held-out sessions): NRMSE of the head "
        "minus that of the best baseline, with a 95 % paired bootstrap interval over pulses; the head "
        "beats the baseline only where the whole interval is below zero")


def shipped_verdict(sh: Shipped) -> dict[str, Any]:
    """Each head of the shipped model against the best baseline on every held-out pulse.

    The pulses are the split's test pulses and every pulse of the held-out sessions, pooled;
    the best baseline is the one (fitted on the same calibration pulses) with the lowest NRMSE
    on them. A head beats it when the 95 % paired bootstrap interval of the NRMSE difference
    (:func:`rtdecode.metrics.compare_nrmse`) lies below zero (:data:`RULE`).
    """
    tg, basis = sh.targets, sh.targets.synergies.basis
    y = np.concatenate([tg.y[sh.test], *tg.test_y])
    model = [head_predictions(sh.members, basis, c) for c in [sh.ae.codes[sh.test], *sh.ae.test_codes]]
    base = {n: np.concatenate([p_test, *p_held]) for n, (p_test, p_held) in sh.baselines.items()}
    scores = {n: nrmse(y, p) for n, p in base.items()}
    best = min(scores, key=scores.__getitem__)
    out: dict[str, Any] = {"rule": RULE, "best_baseline": best, "pulses": len(y), "baselines": scores,
                           "heads": {}}
    for h in HEADS:
        c = compare_nrmse(y, np.concatenate([m[h] for m in model]), base[best])
        out["heads"][h] = {"nrmse_held_out": c.model, "best_baseline_nrmse": c.baseline, "diff": c.diff,
                           "ci95": [c.lo, c.hi], "beats_baseline": c.model_better}
    return out


def _provenance(cfg: M2mTrainConfig, seconds: float) -> dict[str, Any]:
    import torch

    from rtdecode.commands.train import git_commit

    return {"config": cfg.model_dump(mode="json"), "git": git_commit(), "torch": torch.__version__,
            "threads": cfg.threads, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "platform": platform.platform(), "train_seconds": round(seconds, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _export(cfg: M2mTrainConfig, sh: Shipped, out_dir: Path, verdict: dict[str, Any],
            provenance: dict[str, Any], muscles: list[str], features: np.ndarray, mep_uv: np.ndarray) -> Path:
    preds = head_predictions(sh.members, sh.targets.synergies.basis, sh.ae.codes)
    bounds = stimulus_bounds(features, mep_uv, sh.targets.scale.invert(preds[cfg.export.primary]),
                             f"{len(features)} pulses of the training session")
    path = cfg.export.path or out_dir / f"{cfg.name}.onnx"
    return export_m2m(sh, path, name=cfg.name, volume=cfg.volume, cfg_mapper=cfg.mapper, muscles=muscles,
                      bounds=bounds, provenance=provenance, metrics={"held_out": verdict},
                      primary=cfg.export.primary)


def train_from_config(cfg: M2mTrainConfig, out_dir: Path, *, export: bool = True,
                      config_name: str = "CONFIG") -> dict[str, Any]:
    """Run the study, write the report, export and verify the shipped model; returns results."""
    import torch

    from rtdecode.tms.m2m_verify import verify_m2m

    torch.set_num_threads(cfg.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    partial = out_dir / "results.partial.json"
    res, shipped = run_study(cfg, out_dir, lambda r: partial.write_text(json.dumps(_jsonable(r), indent=1),
                                                                        encoding="utf-8"))
    seconds = time.perf_counter() - t0
    summary = summarise(res)
    res["summary"] = summary
    res["seconds"] = round(seconds, 1)
    prov = _provenance(cfg, seconds)
    res["provenance"] = prov
    if shipped is not None and export and cfg.export.enabled:
        verdict = shipped_verdict(shipped)
        t = shipped.table
        path = _export(cfg, shipped, out_dir, verdict, prov, t.muscles, t.stimulus_features(), t.mep_uv)
        res["shipped"] = {"path": str(path), **verdict, "verify": verify_m2m(path)}
        path.with_suffix(".md").write_text(model_card(_jsonable(res), cfg.name, config_name),
                                           encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(_jsonable(res), indent=1), encoding="utf-8")
    (out_dir / "table1.md").write_text(markdown(summary, cfg.protocol.inputs, cfg.protocol.depths,
                                                f"M2M-Net on {res['sessions']['train']['name']}: {cfg.name}"),
                                       encoding="utf-8")
    logger.info("m2m study %s done in %.0f s -> %s", cfg.name, seconds, out_dir)
    return res
