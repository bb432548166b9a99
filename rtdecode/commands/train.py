"""``rtdecode train CONFIG.toml``: train, evaluate, export and verify one decoder.

The config (``configs/train/*.toml``, schema :class:`rtdecode.nn.train.TrainConfig`) names
the dataset, the causal preprocessing chain (the service's own stages), the networks, the
optimiser, the loss and the protocol (seed 000's A/B protocol or seed 004's
leave-one-trial-out). The output folder gets:

- ``metrics.json``: every number of the run (per model, per attempt / fold, controls,
  baselines, the verify report of the exported model);
- ``curves.png``, ``predictions.png`` (regression) or ``confusion.png`` (classification);
- ``checkpoint.npz``: the exported network's weights and spec (no pickle);
- ``<name>.onnx`` (+ its ``.torch.npz`` sidecar): the streaming model, unless
  ``export.path`` puts it elsewhere.

Exit 0 when the run finished and the exported model verifies, 1 when verify fails.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["register", "run", "train_from_config"]

ROOT = Path(__file__).resolve().parents[2]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = sub.add_parser("train", help="train a decoder from a TOML config, export and verify it")
    p.add_argument("config", help="training config (.toml), e.g. configs/train/monkey_reach_gamma.toml")
    p.add_argument("--out", default=None, help="output folder (default: the config's out_dir, "
                   "else out/train/<name>)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (overrides the config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-export", action="store_true", help="evaluate only; write no ONNX model")
    p.set_defaults(func=run)


def git_commit() -> str:
    """Short commit hash of the repository (``unknown`` outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _round(value: Any, nd: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, nd)
    if isinstance(value, dict):
        return {k: _round(v, nd) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, nd) for v in value]
    return value


def heldout_metrics(result_metrics: dict[str, Any], model_name: str,
                    output_names: list[str]) -> dict[str, Any]:
    """The held-out numbers that go into the ONNX metadata of the exported model."""
    if result_metrics["protocol"] == "ab":
        if model_name in result_metrics["models"]:
            m = result_metrics["models"][model_name]
        else:  # "control_linear": the linear control, exported as a LinearDecoder
            m = result_metrics["controls"]["linear"]
        return _round({
            "protocol": "seed 000 groups of five (3 train / A / B), score = mean(Amax(B), Bmax(A))",
            "r2_score": m["score"], "r2_amax_b": m["amax_b"], "r2_bmax_a": m["bmax_a"],
            "r2_amax_b_outputs": dict(zip(output_names, m["r2_outputs"]["amax_b"], strict=True)),
            "r2_bmax_a_outputs": dict(zip(output_names, m["r2_outputs"]["bmax_a"], strict=True)),
        })
    m = result_metrics["models"][model_name]
    fold = next(f for f in m["folds"] if f["test"] == result_metrics["export_fold"])
    out = {
        "protocol": "seed 004 leave one trial out",
        "loto_accuracy_mean": m["accuracy"]["mean"], "loto_accuracy_sd": m["accuracy"]["sd"],
        "loto_folds": m["accuracy"]["n"],
        "heldout_trial": fold["test"], "heldout_accuracy": fold["accuracy"],
        "heldout_accuracy_smoothed": fold["smoothed"],
        "loto_accuracy_smoothed_mean": {k: v["mean"] for k, v in m["smoothed"].items()},
    }
    return _round(out)


# ----------------------------------------------------------------------------------- plots


def _plots(out: Path, cfg: Any, result: Any) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    data = result.data
    if cfg.protocol.kind == "ab":
        names = list(result.curves)
        fig, axes = plt.subplots(2, len(names), figsize=(4.5 * len(names), 6), squeeze=False)
        for j, name in enumerate(names):
            h = result.curves[name]["amax"]
            axes[0, j].semilogy(np.asarray(h["loss"]) + 1e-12)
            axes[0, j].set_title(f"{name}: training loss (chosen Amax attempt)", fontsize=9)
            for k, v in h["r2"].items():
                axes[1, j].plot(v, label=k)
            axes[1, j].set_ylim(-0.5, 1.0)
            axes[1, j].set_xlabel("step")
            axes[1, j].set_ylabel("R²")
            axes[1, j].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=90)
        plt.close(fig)
        written.append("curves.png")

        segs = result.predictions["segments"]
        mask_b = result.predictions["masks"]["b"]
        i = next((i for i, m in enumerate(mask_b) if m.any()), 0)
        idx = np.flatnonzero(mask_b[i])[:2000]
        t = idx / data.frame_rate_hz
        K = data.n_outputs
        fig, axes = plt.subplots(K, 1, figsize=(10, 2.2 * K), squeeze=False, sharex=True)
        for k in range(K):
            ax = axes[k, 0]
            ax.plot(t, data.segments[i].y[idx, k], "k.", ms=2, label="truth")
            for name, preds in segs.items():
                ax.plot(t, preds[i][idx, k], ".", ms=2, label=name)
            ax.set_ylabel(f"{data.output_names[k]} [{data.output_units[k]}]", fontsize=8)
        axes[0, 0].set_title("set B frames: Amax models (chosen on A) vs truth", fontsize=9)
        axes[0, 0].legend(fontsize=7, markerscale=4, ncol=4)
        axes[-1, 0].set_xlabel("time in segment, s")
        fig.tight_layout()
        fig.savefig(out / "predictions.png", dpi=90)
        plt.close(fig)
        written.append("predictions.png")
    else:
        names = list(result.curves)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for name in names:
            for fold, h in result.curves[name].items():
                axes[0].plot(h["val_loss"], alpha=0.5, label=f"{name} {fold}" if fold == next(
                    iter(result.curves[name])) else None)
                axes[1].plot(h["val_acc"], alpha=0.5)
        axes[0].set_title("validation loss per fold", fontsize=9)
        axes[1].set_title("validation accuracy per fold", fontsize=9)
        axes[0].legend(fontsize=7)
        for ax in axes:
            ax.set_xlabel("epoch")
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=90)
        plt.close(fig)
        written.append("curves.png")

        cms = dict(result.predictions["confusion"])
        if "lda" in result.metrics.get("baselines", {}):
            cms["LDA (TD features)"] = np.asarray(result.metrics["baselines"]["lda"]["confusion"])
        fig, axes = plt.subplots(1, len(cms), figsize=(3.6 * len(cms), 3.6), squeeze=False)
        labels = data.class_names or []
        for ax, (name, cm) in zip(axes[0], cms.items(), strict=True):
            norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
            ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
            for (a, b), v in np.ndenumerate(norm):
                ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=6)
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("predicted", fontsize=8)
        axes[0, 0].set_ylabel("true", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "confusion.png", dpi=90)
        plt.close(fig)
        written.append("confusion.png")
    return written


# ----------------------------------------------------------------------------------- run


def train_from_config(cfg: Any, out_dir: str | Path | None = None, *, export: bool = True) -> dict[str, Any]:
    """Train, evaluate, export and verify as a :class:`~rtdecode.nn.train.TrainConfig` says.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path, optional
        Output folder (default ``cfg.out_dir``, else ``out/train/<name>``).
    export : bool
        Write (and verify) the streaming ONNX model when ``cfg.export.enabled``.

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (``export`` holds the ONNX path and the
        verify report).
    """
    import torch

    from rtdecode.nn.checkpoint import save_checkpoint
    from rtdecode.nn.export import export_streaming, training_bounds
    from rtdecode.nn.models import model_to_spec
    from rtdecode.nn.train import load_training_data, run_protocol
    from rtdecode.nn.verify import verify_model

    out = Path(out_dir) if out_dir is not None else (cfg.out_dir or Path("out") / "train" / cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg.threads))
    t0 = time.perf_counter()
    data = load_training_data(cfg)
    logger.info("%s: %d segments, %d trials, %d frames of %d channels at %g Hz → %d outputs",
                cfg.name, len(data.segments), len(data.trials), sum(s.n_frames for s in data.segments),
                data.n_inputs, data.frame_rate_hz, data.n_outputs)
    result = run_protocol(cfg, data)
    data = result.data
    metrics: dict[str, Any] = {
        "name": cfg.name, "description": cfg.description, "task": cfg.task,
        "config": cfg.model_dump(mode="json"),
        "data": {"kind": cfg.data.kind, "path": str(cfg.data.path), "trials": len(data.trials),
                 "frames": int(sum(s.n_frames for s in data.segments)), "frame_rate_hz": data.frame_rate_hz,
                 "inputs": data.n_inputs, "outputs": data.output_names, "units": data.output_units,
                 "preprocessing_kinds": [s["kind"] for s in data.preprocessing]},
        "results": result.metrics,
        "environment": {"machine": platform.machine(), "processor": platform.processor() or "unknown",
                        "python": platform.python_version(), "torch": torch.__version__,
                        "threads": int(cfg.threads), "git_commit": git_commit(),
                        "date": _dt.date.today().isoformat()},
    }
    export_name = cfg.export.model or cfg.models[0].name
    model = result.models[export_name]
    outputs = [{"name": n, "unit": u} for n, u in zip(data.output_names, data.output_units, strict=True)]
    extra_fields: dict[str, Any] = {
        "rate_hz": data.rate_hz, "channels": data.channels, "preprocessing": data.preprocessing,
        "outputs": outputs,
        "task": data.task, "grid_shape": list(data.grid_shape) if data.grid_shape else None,
        "input_unit": data.input_unit, "channel_names": data.channel_names,
    }
    save_checkpoint(out / "checkpoint.npz", model, model_to_spec(model), {**extra_fields, "run": cfg.name})
    if export and cfg.export.enabled:
        path = cfg.export.path or out / f"{cfg.name}.onnx"
        held = heldout_metrics(result.metrics, export_name, data.output_names)
        prov = {
            **data.provenance, "trained_by": f"rtdecode train ({cfg.name})", "model": export_name,
            "protocol": cfg.protocol.kind, "seed": cfg.seed, "git_commit": git_commit(),
            "date": _dt.date.today().isoformat(),
        }
        export_streaming(model, path, rate_hz=data.rate_hz, channels=data.channels,
                         preprocessing=data.preprocessing, outputs=outputs, task=data.task,
                         provenance=prov, metrics=held, channel_names=data.channel_names,
                         grid_shape=data.grid_shape, input_unit=data.input_unit,
                         name=cfg.export.name or cfg.name, bounds=training_bounds(model, data))
        report = verify_model(path) if cfg.export.verify else None
        metrics["export"] = {"path": str(path), "model": export_name, "bytes": Path(path).stat().st_size,
                             "heldout": held,
                             "verify": None if report is None else {
                                 k: report[k] for k in ("ok", "max_abs", "max_rel", "tolerance", "providers",
                                                        "chunks", "skipped")}}
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    if cfg.plots:
        metrics["plots"] = _plots(out, cfg, result)
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=1), encoding="utf-8")
    logger.info("%s: done in %.0f s → %s", cfg.name, metrics["seconds"], out)
    return metrics


def run(args: argparse.Namespace) -> int:
    """Load the config, train, print a short summary; 0 when the exported model verifies."""
    from rtdecode.nn.train import load_train_config

    cfg = load_train_config(args.config)
    if args.threads is not None:
        cfg.threads = int(args.threads)
    if args.no_progress:
        cfg.progress = False
    metrics = train_from_config(cfg, args.out, export=not args.no_export)
    res = metrics["results"]
    if res["protocol"] == "ab":
        for name, m in res["models"].items():
            print(f"{name}: R² score {m['score']:.3f} (Amax(B) {m['amax_b']:.3f}, "
                  f"Bmax(A) {m['bmax_a']:.3f}), "
                  f"{m['parameters']} parameters")
        for name, m in res["controls"].items():
            print(f"control {name}: R² score {m['score']:.3f}")
    else:
        for name, m in res["models"].items():
            sm = ", ".join(f"{k} {v['mean']:.3f}" for k, v in m["smoothed"].items())
            print(f"{name}: accuracy {m['accuracy']['mean']:.3f} ± {m['accuracy']['sd']:.3f} "
                  f"over {m['accuracy']['n']} folds; smoothed: {sm}")
        for name, m in res.get("baselines", {}).items():
            print(f"baseline {name}: accuracy {m['accuracy']['mean']:.3f} ± {m['accuracy']['sd']:.3f}")
    exp = metrics.get("export")
    if exp:
        ok = exp["verify"]["ok"] if exp["verify"] else None
        print(f"exported {exp['path']} ({exp['bytes']} bytes); verify: "
              f"{'PASS' if ok else ('skipped' if ok is None else 'FAIL')}")
        if ok is False:
            return 1
    return 0
