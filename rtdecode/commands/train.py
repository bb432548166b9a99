"""``rtdecode train CONFIG.toml``: train, evaluate, export and verify one decoder.

The config (``configs/train/*.toml``, schema :class:`rtdecode.nn.train.config.TrainConfig`) names
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
from typing import TYPE_CHECKING, Any

import numpy as np

from rtdecode.decoders.base import StreamingDecoder

if TYPE_CHECKING:
    from rtdecode.nn.train.config import TrainConfig
    from rtdecode.nn.train.results import RunResult

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


# ----------------------------------------------------------------------------------- run


def _summary(cfg: TrainConfig, result: RunResult) -> dict[str, Any]:
    """The run's record: config, data, results and environment."""
    import torch

    data = result.data
    return {
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


def _write_network(result: RunResult, name: str, path: Path, model_name: str, prov: dict[str, Any],
                   held: dict[str, Any]) -> None:
    from rtdecode.nn.export import export_streaming, training_bounds

    data = result.data
    model = result.models[name]
    assert not isinstance(model, StreamingDecoder)
    outputs = [{"name": n, "unit": u} for n, u in zip(data.output_names, data.output_units, strict=True)]
    export_streaming(model, path, rate_hz=data.rate_hz, channels=data.channels,
                     preprocessing=data.preprocessing, outputs=outputs, task=data.task,
                     provenance=prov, metrics=held, channel_names=data.channel_names,
                     grid_shape=data.grid_shape, input_unit=data.input_unit, name=model_name,
                     bounds=training_bounds(model, data))


def _write_decoder(result: RunResult, name: str, path: Path, model_name: str, prov: dict[str, Any],
                   held: dict[str, Any]) -> None:
    """A numpy decoder (the classic LDA) as a streaming ONNX graph, with its own chain."""
    from rtdecode.classic import decoder_bounds, write_decoder

    data = result.data
    dec = result.models[name]
    assert isinstance(dec, StreamingDecoder)
    write_decoder(dec, path, name=model_name, rate_hz=data.rate_hz, channels=data.channels, task=data.task,
                  outputs=list(zip(data.output_names, data.output_units, strict=True)),
                  channel_names=data.channel_names, input_unit=data.input_unit,
                  chain=result.chains.get(name, data.preprocessing), provenance=prov, metrics=held,
                  bounds=decoder_bounds(dec, data.recordings, [], None))


def _export(cfg: TrainConfig, result: RunResult, name: str, path: Path,
            fitted_on: str | None = None) -> dict[str, Any]:
    """Write model ``name`` as a streaming ONNX file (held-out numbers in its metadata), verify it.

    ``fitted_on`` says what a model refitted after the protocol was fitted on.
    """
    from rtdecode.nn.verify import verify_model

    held = result.heldout(name)
    prov = {**result.data.provenance, "trained_by": f"rtdecode train ({cfg.name})", "model": name,
            "protocol": cfg.protocol.kind, "seed": cfg.seed, "git_commit": git_commit(),
            "date": _dt.date.today().isoformat(), "classes": result.data.class_names}
    if cfg.protocol.baselines:
        p = cfg.protocol
        prov["baseline"] = {"window_s": p.lda_window_s, "threshold": p.lda_threshold,
                            "features": list(p.lda_features), "stride": p.lda_stride}
    if fitted_on is not None:
        prov["fitted_on"] = fitted_on
        prov["metrics_from"] = "the protocol's held-out folds (before the refit on all data)"
    writer = _write_decoder if isinstance(result.models[name], StreamingDecoder) else _write_network
    writer(result, name, path, cfg.export.name or cfg.name, prov, held)
    report = verify_model(path) if cfg.export.verify else None
    keys = ("ok", "max_abs", "max_rel", "tolerance", "providers", "chunks", "skipped")
    return {"path": str(path), "model": name, "bytes": Path(path).stat().st_size, "heldout": held,
            "verify": None if report is None else {k: report[k] for k in keys}}


def _checkpoint(cfg: TrainConfig, result: RunResult, name: str, path: Path) -> None:
    """The exported network's weights and spec, with the data facts export needs (no pickle)."""
    from rtdecode.nn.checkpoint import save_checkpoint
    from rtdecode.nn.models import model_to_spec

    data = result.data
    model = result.models[name]
    if isinstance(model, StreamingDecoder):
        return  # a numpy decoder: its ONNX file is the whole model
    outputs = [{"name": n, "unit": u} for n, u in zip(data.output_names, data.output_units, strict=True)]
    save_checkpoint(path, model, model_to_spec(model), {
        "rate_hz": data.rate_hz, "channels": data.channels, "preprocessing": data.preprocessing,
        "outputs": outputs, "task": data.task,
        "grid_shape": list(data.grid_shape) if data.grid_shape else None, "input_unit": data.input_unit,
        "channel_names": data.channel_names, "run": cfg.name})


def train_from_config(cfg: TrainConfig, out_dir: str | Path | None = None, *,
                      export: bool = True) -> dict[str, Any]:
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

    from rtdecode.nn.train import load_training_data, run_protocol

    out = Path(out_dir) if out_dir is not None else (cfg.out_dir or Path("out") / "train" / cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg.threads))
    t0 = time.perf_counter()
    data = load_training_data(cfg)
    logger.info("%s: %d segments, %d trials, %d frames of %d channels at %g Hz → %d outputs",
                cfg.name, len(data.segments), len(data.trials), sum(s.n_frames for s in data.segments),
                data.n_inputs, data.frame_rate_hz, data.n_outputs)
    result = run_protocol(cfg, data)
    metrics = _summary(cfg, result)
    export_name = cfg.export_model
    fitted_on = None
    if export and cfg.export.enabled and cfg.export.all_data:
        from rtdecode.nn.train.refit import refit_all

        fitted_on = refit_all(cfg, result, export_name)
    _checkpoint(cfg, result, export_name, out / "checkpoint.npz")
    if export and cfg.export.enabled:
        metrics["export"] = _export(cfg, result, export_name, cfg.export.path or out / f"{cfg.name}.onnx",
                                    fitted_on)
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    if cfg.plots:
        from rtdecode.nn.train.plots import run_plots

        metrics["plots"] = run_plots(result, out)
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
