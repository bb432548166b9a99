"""``rtdecode trt-build TARGET``: build TensorRT engines ahead, so the daemon never builds at start.

TARGET is a daemon config (every decoder that lists ``tensorrt`` in ``providers``, with its
``trt_cache_dir``, ``fp16``, ``max_step_frames`` and ``device_id``, so the engine lands in the
folder the daemon will look in) or one ``.onnx`` model (with the options below). Each model
is opened on TensorRT alone (no fallback): a missing or non-starting TensorRT is an error
(exit 4) that names the fix. An engine already cached for the same key is loaded, not rebuilt;
``--prune`` removes this model's engines built for another model file, TensorRT, GPU or
precision. Run it at install time on the target machine (deploy/jetson/setup.sh does), as
the user the service runs as, or into the cache folder the service uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class _Job:
    name: str
    model: Path
    cache_dir: Path | None
    fp16: bool
    max_frames: int
    device_id: int


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``trt-build`` sub-command."""
    p = sub.add_parser("trt-build", help="build (or check) the TensorRT engines of a config or model ahead "
                       "of the first start", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("target", help="daemon config (TOML / YAML) or an .onnx model")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="model only: TensorRT cache root (default $RTDECODE_TRT_CACHE, else "
                   "~/.cache/rtdecode/trt)")
    p.add_argument("--fp16", action="store_true", help="model only: allow fp16 kernels")
    p.add_argument("--max-frames", type=int, default=2048,
                   help="model only: longest chunk per run, the profile maximum (default 2048)")
    p.add_argument("--device-id", type=int, default=0, help="model only: CUDA device (default 0)")
    p.add_argument("--prune", action="store_true", help="remove this model's engines built for another key")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _jobs(args: argparse.Namespace) -> list[_Job]:
    """What to build: the TensorRT decoders of a config, or the one model of the command line."""
    from rtdecode.config import load_config
    from rtdecode.errors import ConfigError

    target = Path(args.target)
    if target.suffix == ".onnx":
        return [_Job(target.stem, target, args.cache_dir, args.fp16, args.max_frames, args.device_id)]
    cfg = load_config(target)
    jobs = [_Job(d.name, Path(d.model), d.trt_cache_dir, d.fp16, d.max_step_frames, d.device_id)
            for d in cfg.decoders if "tensorrt" in d.providers]
    if not jobs:
        raise ConfigError(f"{target}: no decoder lists \"tensorrt\" in providers, nothing to build",
                          "add \"tensorrt\" to decoders[].providers, or give an .onnx model")
    return jobs


def _build(job: _Job, prune: bool) -> dict[str, Any]:
    """Open one model on TensorRT alone (builds or loads its engine); what happened."""
    from rtdecode.runtime import engine_cache
    from rtdecode.runtime.streaming import StreamingModel

    m = StreamingModel(job.model, ["tensorrt"], require_provider=True, trt_cache_dir=job.cache_dir,
                       fp16=job.fp16, max_frames=job.max_frames, device_id=job.device_id,
                       io_binding=False)
    t0 = time.perf_counter()
    m.open()
    try:
        plan = m.engine_plan
        assert plan is not None  # TensorRT is in use (require_provider)
        out = {"decoder": job.name, "model": str(job.model), "seconds": round(time.perf_counter() - t0, 3),
               "was": plan.status.state, **engine_cache.describe(plan)}
        out["state"] = engine_cache.cache_status(plan.root, plan.key).state if plan.key else "unavailable"
        if prune and plan.key is not None:
            out["pruned"] = [str(p) for p in engine_cache.prune(plan.root, plan.key)]
        return out
    finally:
        m.close()


def run(args: argparse.Namespace) -> int:
    """Build each engine; print one line (or JSON) per model. Exit 0 when all are cached now."""
    from rtdecode.runtime.providers import require_providers

    jobs = _jobs(args)
    require_providers(["tensorrt"])  # before any work: the fix for a CPU-only or TensorRT-less build
    results = [_build(job, args.prune) for job in jobs]
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    for r in [] if args.json else results:
        verb = "loaded (already built)" if r["was"] == "hit" else f"built ({r['was']} before)"
        sys.stdout.write(f"{r['decoder']}: TensorRT engine {verb} in {r['seconds']:.1f} s → "
                         f"{r['engine_dir'] or 'cache off: ' + r['detail']}; now: {r['state']}"
                         + (f"; pruned {len(r['pruned'])} stale folder(s)" if r.get("pruned") else "") + "\n")
    return 0 if all(r["state"] == "hit" for r in results) else 1
