"""In-process micro-benchmarks folded into the latency run.

- :func:`stateful_vs_recompute`: one tick of the stateful single-step model vs re-running the
  receptive field (the measurement of :mod:`bench.streaming_cost`), on the shipped headline
  model and, with torch installed, on seed 000's 1 kHz layout (receptive field 898 frames).
- :func:`ort_vs_torch`: per-step time of ONNX Runtime vs torch eager for the same model (the
  ``.torch.npz`` sidecar next to the ``.onnx``), when torch is installed.
- :func:`telemetry_overhead`: :meth:`Pipeline.process` on the headline model with the stage
  timer attached vs not, interleaved blocks, same input — the cost of ``service.stage_timing``.
- :func:`recorder_overhead`: the loop's share of recording (``[record]``): the recorder's
  ``on_chunk`` / ``on_sent`` per tick while its writer process writes the file.

Timings are wall-clock (``time.perf_counter_ns``), one ONNX Runtime intra-op thread.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from bench.models import MODELS

ROOT = Path(__file__).resolve().parents[1]


def us_summary(ns: np.ndarray | list[int]) -> dict[str, float]:
    """Nanosecond timings → p50 / p90 / p99 / p99.9 / max / mean in µs and the count."""
    us = np.asarray(ns, dtype=np.float64) / 1e3
    q = np.percentile(us, [50, 90, 99, 99.9])
    return {"p50": round(float(q[0]), 2), "p90": round(float(q[1]), 2), "p99": round(float(q[2]), 2),
            "p999": round(float(q[3]), 2), "max": round(float(us.max()), 2),
            "mean": round(float(us.mean()), 2), "n": int(us.size)}


def time_calls(fn, calls: int, warmup: int) -> dict[str, float]:  # noqa: ANN001
    """µs per call of ``fn()`` back to back (wall clock), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    ns = np.empty(calls, dtype=np.int64)
    for i in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        ns[i] = time.perf_counter_ns() - t0
    return us_summary(ns)


def have_torch() -> bool:
    """Whether torch can be imported (the ``train`` extra)."""
    return importlib.util.find_spec("torch") is not None


def stateful_vs_recompute(ticks: int = 2000, chunks: tuple[int, ...] = (1,), seed_layout: bool = True,
                          log=lambda s: None) -> dict:  # noqa: ANN001
    """Stateful step vs window recompute on the shipped Gamma CNN (+ the 1 kHz seed layout)."""
    import tempfile

    from bench.streaming_cost import build_model, measure

    rng = np.random.default_rng(0)
    out: dict = {"what": "time per tick (µs): StreamingModel.step on the new frames vs the same graph "
                         "with zero state on the last RF-1+n frames", "models": []}
    path = MODELS / "openhdemg_gamma.onnx"
    runs = [measure(path, c, ticks, 100, rng) for c in chunks]
    out["models"].append({"model": "models/openhdemg_gamma.onnx (shipped, RF 91 frames at 102.4 Hz)",
                          "runs": runs})
    log(f"  stateful vs recompute, shipped Gamma: ×{runs[0]['speedup_p50']:.1f} (p50)")
    if seed_layout and have_torch():
        with tempfile.TemporaryDirectory(prefix="rtdecode-bench-") as tmp:
            p = Path(tmp) / "gamma_1khz.onnx"
            desc = build_model(p, 27, 1000.0, 0.3, 0)
            runs = [measure(p, c, ticks, 100, rng) for c in chunks]
        out["models"].append({"model": "seed 000 layout at 1 kHz, 300 ms Gamma kernels (RF 898 frames), "
                                       "random weights", "desc": desc, "runs": runs})
        log(f"  stateful vs recompute, 1 kHz seed layout: ×{runs[0]['speedup_p50']:.1f} (p50)")
    else:
        committed = ROOT / "bench" / "results" / "streaming_cost.json"
        if committed.exists():
            prev = json.loads(committed.read_text())
            out["models"].append({"model": "seed 000 layout at 1 kHz (from bench/results/"
                                           "streaming_cost.json, not re-run: torch not installed)",
                                  "desc": prev.get("model"),
                                  "runs": prev.get("runs"), "date": prev.get("date")})
    return out


def ort_vs_torch(models: tuple[str, ...] = ("openhdemg_gamma",), steps: int = 2000,
                 log=lambda s: None) -> dict:  # noqa: ANN001
    """ONNX Runtime (CPU, 1 thread) vs torch eager (1 thread) per single-frame step."""
    if not have_torch():
        return {"skipped": "torch is not installed (pip install -e '.[train]')"}
    import torch

    from rtdecode.nn.checkpoint import load_checkpoint
    from rtdecode.nn.models import streaming_core
    from rtdecode.runtime.streaming import StreamingModel

    torch.set_num_threads(1)
    res: dict = {"what": "time per single-frame step (µs), same weights, state carried", "models": []}
    for name in models:
        onnx_path = MODELS / f"{name}.onnx"
        side = MODELS / f"{name}.torch.npz"
        if not side.exists():
            continue
        m = StreamingModel(onnx_path).open()
        meta = m.meta
        assert meta is not None
        model, _spec, extra = load_checkpoint(side)
        core = streaming_core(model, int(extra.get("session", 0))).eval()
        x = np.random.default_rng(0).standard_normal((steps + 100, meta.model_channels)).astype(np.float32)
        t_ort = np.empty(steps, dtype=np.int64)
        t_torch = np.empty(steps, dtype=np.int64)
        states = core.zero_states(1)
        diff = 0.0
        with torch.no_grad():
            for i in range(steps + 100):
                fr = x[i:i + 1]
                a = time.perf_counter_ns()
                y1 = m.step(fr)
                b = time.perf_counter_ns()
                xt = torch.from_numpy(np.ascontiguousarray(fr.T[None]))
                y2, states = core.step(xt, states)
                c = time.perf_counter_ns()
                if i >= 100:
                    t_ort[i - 100], t_torch[i - 100] = b - a, c - b
                if i % 97 == 0 and meta.task != "classification":
                    diff = max(diff, float(np.abs(y1[0] - y2[0, :, 0].numpy()).max()))
        m.close()
        o, tt = us_summary(t_ort), us_summary(t_torch)
        res["models"].append({"model": f"models/{name}.onnx", "onnxruntime_us": o, "torch_eager_us": tt,
                              "torch_over_ort_p50": round(tt["p50"] / o["p50"], 2),
                              "max_abs_output_diff": diff if meta.task != "classification" else None,
                              "torch": torch.__version__})
        log(f"  ORT vs torch eager, {name}: {o['p50']} vs {tt['p50']} µs (p50)")
    return res


def telemetry_overhead(chunks: int = 4000, block: int = 200, log=lambda s: None) -> dict:  # noqa: ANN001
    """Cost of the stage timer in :meth:`Pipeline.process` (headline model, 2-sample chunks)."""
    from rtdecode.config import DecoderConfig
    from rtdecode.service.pipeline import Pipeline
    from rtdecode.service.telemetry import StageTimer, daemon_stage_names

    dcfg = DecoderConfig(name="dec", model=MODELS / "openhdemg_gamma.onnx")
    pipe = Pipeline([dcfg], 2048.0, 64).open()
    timer = StageTimer(daemon_stage_names(["dec"]))
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((chunks * 2, 64)) * 50).astype(np.float32)
    t = np.arange(chunks * 2) / 2048.0
    on, off = [], []
    for b0 in range(0, chunks, block):
        use = (b0 // block) % 2 == 0
        pipe.attach_timer(timer if use else None)
        dest = on if use else off
        for i in range(b0, min(b0 + block, chunks)):
            a = time.perf_counter_ns()
            pipe.process(x[2 * i:2 * i + 2], t[2 * i:2 * i + 2])
            dest.append(time.perf_counter_ns() - a)
    pipe.close()
    s_on, s_off = us_summary(np.array(on)), us_summary(np.array(off))
    # the timer calls alone, without the pipeline (isolates their cost from noise)
    n = 20000
    a = time.perf_counter_ns()
    for _ in range(n):
        ta = time.perf_counter_ns()
        timer.add_ns(1, time.perf_counter_ns() - ta)
    per_call = (time.perf_counter_ns() - a) / n / 1e3
    res = {"what": "Pipeline.process per 2-sample chunk (64 ch, Gamma CNN), stage timer on vs off, "
                   f"interleaved blocks of {block} chunks",
           "on_us": s_on, "off_us": s_off,
           "delta_mean_us": round(s_on["mean"] - s_off["mean"], 2),
           "delta_p50_us": round(s_on["p50"] - s_off["p50"], 2),
           "timer_record_us": round(per_call, 3),
           "records_per_tick": "pipeline: 2 every tick + 2 on ticks with a model frame; daemon: pull, tick "
                               "(+ publish, fusion when they run)"}
    log(f"  telemetry on/off in Pipeline.process: {s_on['mean']} vs {s_off['mean']} µs mean; one record "
        f"{per_call:.2f} µs")
    return res


def recorder_overhead(ticks: int = 20000, log=lambda s: None) -> dict:  # noqa: ANN001
    """What recording costs the loop per tick: :meth:`Recorder.on_chunk` (a 2-sample, 64-channel
    chunk) and :meth:`Recorder.on_sent` (a 2-value estimate frame), with the writer process
    draining the ring to a real HDF5 file meanwhile."""
    import tempfile

    from rtdecode.config import load_config
    from rtdecode.record.recorder import Recorder
    from rtdecode.runtime.streaming import read_metadata
    from rtdecode.service.plugins import PluginContext, StreamFacts
    from rtdecode.sinks.protocol import EstimateEncoder
    from rtdecode.types import Chunk

    model = MODELS / "openhdemg_gamma.onnx"
    with tempfile.TemporaryDirectory(prefix="rtdecode-bench-") as tmp:
        cfg = load_config(data={"source": {"name": "x"}, "decoders": [{"name": "dec", "model": str(model)}],
                                "record": {"dir": tmp}})
        assert cfg.record is not None
        rec = Recorder(cfg.record)
        rec.open(PluginContext(config=cfg, stream=StreamFacts("x", "x", 2048.0, 64), clock=time.monotonic,
                               models={"dec": read_metadata(model)}, publish=lambda frame: None))
        rec.wait_ready()
        x = np.zeros((2, 64), np.float32)
        enc = EstimateEncoder("dec", 2)
        v = np.zeros(2, np.float32)
        on_chunk, on_sent = [], []
        for i in range(ticks):
            c = Chunk(samples=x, t_lsl=np.array([i, i + 0.5]), first_index=2 * i)
            a = time.perf_counter_ns()
            rec.on_chunk(c)
            b = time.perf_counter_ns()
            rec.on_sent(enc.encode(i, 0, 1.0, 1.0, v))
            on_chunk.append(b - a)
            on_sent.append(time.perf_counter_ns() - b)
            if i % 2 == 0:
                time.sleep(0.0)  # let the writer process have the CPU now and then, as ticks do
        rec.close()
        dropped = rec.status()["dropped"]
    res = {"what": "per call, loop thread, writer process running: on_chunk (2 x 64 float32) and "
                   "on_sent (2-value estimate frame)",
           "on_chunk_us": us_summary(on_chunk), "on_sent_us": us_summary(on_sent), "dropped": dropped}
    log(f"  recorder per tick: on_chunk p50 {res['on_chunk_us']['p50']} µs, on_sent p50 "
        f"{res['on_sent_us']['p50']} µs (dropped {dropped})")
    return res
