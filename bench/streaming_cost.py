"""Cost of one tick: the stateful single-step ONNX model vs recomputing the receptive field.

The model is seed 000's Gamma CNN at 1 kHz with 300 ms Gamma kernels (27 inputs →
21 → 15 → 9 feature layers, shared Gamma layers 9 → 6 → 3 → 1: receptive field
3·299 + 1 = 898 frames), exported with :func:`rtdecode.nn.export.export_streaming`.
Weights are random (training does not change the cost).

Per tick, ``n`` new frames arrive (n = 1 and typical LSL chunk sizes):

- **stateful**: the daemon's path, :meth:`StreamingModel.step` on the ``n`` frames (the
  graph reads and returns the causal conv states);
- **recompute**: the same ONNX graph with zero states on the last ``RF − 1 + n`` frames
  (kept in a preallocated window), i.e. re-running the whole receptive field every tick —
  what a model exported without state would have to do. Its outputs for the new frames
  equal the stateful ones (checked on every run).

Both use one ONNX Runtime CPU session with one intra-op thread (the daemon's setting).
Times are wall-clock per tick (``time.perf_counter``), reported as p50 / p90 / p99 /
p99.9 / max in microseconds, after a warm-up.

    python bench/streaming_cost.py                      # → bench/results/streaming_cost.json
    python bench/streaming_cost.py --ticks 2000 --out /tmp/quick.json

Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sysinfo import cpu_model  # noqa: E402
from rtdecode.runtime.streaming import StreamingModel  # noqa: E402


def _percentiles(times_s: np.ndarray) -> dict[str, float]:
    us = times_s * 1e6
    return {"p50": float(np.percentile(us, 50)), "p90": float(np.percentile(us, 90)),
            "p99": float(np.percentile(us, 99)), "p999": float(np.percentile(us, 99.9)),
            "max": float(us.max()), "mean": float(us.mean()), "ticks": int(us.size)}


def build_model(path: Path, n_in: int, rate_hz: float, kernel_s: float, seed: int) -> dict:
    """Export a random Gamma CNN to ``path``; returns its description."""
    import torch

    from rtdecode.nn.export import export_streaming
    from rtdecode.nn.models import GammaCNN, count_parameters

    torch.manual_seed(seed)
    model = GammaCNN(n_in, rate_hz, feature_sizes=(21, 15, 9), shared_sizes=(6, 3, 1), kernel_s=kernel_s)
    export_streaming(model, path, rate_hz=rate_hz, channels=n_in, preprocessing=[], outputs=["emg"],
                     provenance={"data": "random weights (benchmark)"}, write_sidecar=False)
    return {"kind": "GammaCNN", "variant": "gamma", "n_in": n_in, "rate_hz": rate_hz, "kernel_s": kernel_s,
            "feature_sizes": [21, 15, 9], "shared_sizes": [6, 3, 1], "parameters": count_parameters(model),
            "receptive_field_frames": model.receptive_field,
            "state_floats": int(sum(int(np.prod(s)) for s in model.state_shapes(1)))}


def measure(path: Path, chunk: int, ticks: int, warmup: int, rng: np.random.Generator) -> dict:
    """Time ``ticks`` ticks of ``chunk`` frames on both paths."""
    live = StreamingModel(path).open()
    ref = StreamingModel(path).open()
    assert live.meta is not None
    c, rf = live.meta.model_channels, live.meta.receptive_field
    total = (ticks + warmup) * chunk
    x = rng.standard_normal((total + rf, c)).astype(np.float32)
    x[:rf] = 0.0  # the recompute window starts on zeros = the stateful model's zero state
    win = rf - 1 + chunk
    t_state = np.empty(ticks)
    t_recomp = np.empty(ticks)
    max_diff = 0.0
    for i in range(ticks + warmup):
        a = rf + i * chunk
        new = x[a:a + chunk]
        t0 = time.perf_counter()
        y_live = live.step(new)
        t1 = time.perf_counter()
        ref.reset()
        y_ref = ref.step(x[a + chunk - win:a + chunk])[-chunk:]
        t2 = time.perf_counter()
        if i >= warmup:
            t_state[i - warmup] = t1 - t0
            t_recomp[i - warmup] = t2 - t1
        if i % 97 == 0:
            max_diff = max(max_diff, float(np.abs(y_live - y_ref).max()))
    live.close()
    ref.close()
    s, r = _percentiles(t_state), _percentiles(t_recomp)
    return {"chunk_frames": chunk, "window_frames": win, "stateful_us": s, "recompute_us": r,
            "speedup_p50": r["p50"] / s["p50"], "speedup_p99": r["p99"] / s["p99"],
            "speedup_mean": r["mean"] / s["mean"], "max_abs_output_diff": max_diff}


def main() -> None:
    """Run the benchmark and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=10000, help="timed ticks per chunk size (all sizes)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--chunks", default="1,10,32", help="frames per tick")
    ap.add_argument("--inputs", type=int, default=27, help="input channels (the paper: 27)")
    ap.add_argument("--rate", type=float, default=1000.0, help="frame rate, Hz")
    ap.add_argument("--kernel-s", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "streaming_cost.json")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="rtdecode-bench-") as tmp:
        path = Path(tmp) / "gamma_1khz.onnx"
        desc = build_model(path, args.inputs, args.rate, args.kernel_s, args.seed)
        runs = []
        for chunk in [int(c) for c in args.chunks.split(",")]:
            res = measure(path, chunk, args.ticks, args.warmup, rng)
            runs.append(res)
            print(f"chunk {chunk:>3}: stateful p50 {res['stateful_us']['p50']:8.1f} us  p99 "
                  f"{res['stateful_us']['p99']:8.1f} | recompute p50 {res['recompute_us']['p50']:8.1f} us  "
                  f"p99 {res['recompute_us']['p99']:8.1f} | ×{res['speedup_p50']:.1f} (p50)", flush=True)
    import onnxruntime

    out = {
        "benchmark": "streaming_cost",
        "what": "time per tick: stateful single-step ONNX (StreamingModel.step) vs re-running the "
                "receptive field (same graph, zero state, RF-1+n frames) each tick",
        "model": desc,
        "runs": runs,
        "environment": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "onnxruntime": onnxruntime.__version__, "intra_op_threads": 1,
                        "note": "shared 2-core CPU machine (another workload ran at the same time); "
                                "wall-clock timings, tails include scheduler noise"},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
