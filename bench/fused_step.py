"""Would one ONNX Runtime call per tick (front end and model together, explicit state) be cheaper?

Issue 13 asked to try running a decoder's linear stages and its model as one ONNX Runtime call
with explicit state, and to keep it only if ``rtdecode verify`` and the benchmark both say so.
The deciding number comes first: what a tick costs in each form. On ``make bench``'s headline
stream (64 ch @ 2,048 Hz, 2 samples a tick; the Gamma CNN's frame every 10 ticks) this times,
per tick, back to back on one thread:

``chain``      the shipped chain of ``models/openhdemg_gamma.onnx`` (4th-order high-pass →
               Gaussian RMS → decimate ×20 → standardise) through ``Chain.process`` (numpy),
               what the daemon runs on every tick today
``ort_floor``  one ONNX Runtime call of a graph that only hands its inputs to its outputs:
               x (1, 64, 2) and three states the size of that chain's (IIR 4 × 64, RMS ring
               123 × 64, anti-alias 8 × 64) in, the same out, bound once with ping-pong state
               buffers by the daemon's own :class:`rtdecode.runtime.binding.BoundStepper` — the least any
               fused per-tick graph can cost
``ort_iir``    the same call doing the high-pass as work: x times a (2 × 2) matrix plus the
               state times a (4 × 2) matrix (the matrix form the numpy path uses), new state out

A fused graph runs on every tick; the numpy chain does too, and the model's own ONNX Runtime
call runs on frame ticks in both forms. So if ``ort_floor`` costs as much as ``chain``, fusing
cannot lower a tick's cost. Results: ``bench/results/fused_step.json``.

    python -m bench fused_step [--ticks 20000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.micro import time_calls
from bench.sysinfo import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODEL = ROOT / "models" / "openhdemg_gamma.onnx"
CHANNELS, RATE_HZ, TICK = 64, 2048.0, 2
STATES = {"iir": 4, "ring": 123, "aa": 8}  # rows of each (rows, 64) state


def _graph(work: bool):  # noqa: ANN202  (an onnx.ModelProto; onnx is the train extra)
    """The pass-through graph, or (``work``) the one that also runs the IIR step as matrix products."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def vi(name: str, rows: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, CHANNELS, rows])

    inputs = [vi("x", TICK)] + [vi(s, n) for s, n in STATES.items()]
    outputs = [vi("y", TICK)] + [vi(s + "_out", n) for s, n in STATES.items()]
    nodes = [helper.make_node("Identity", [s], [s + "_out"]) for s in STATES if not (work and s == "iir")]
    inits = []
    if work:
        rng = np.random.default_rng(0)
        for name, shape in (("d", (TICK, TICK)), ("c", (STATES["iir"], TICK)),
                            ("a", (STATES["iir"], STATES["iir"])), ("b", (TICK, STATES["iir"]))):
            inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name))
        for op, ins, out in (("MatMul", ["x", "d"], "xd"), ("MatMul", ["iir", "c"], "sc"),
                             ("Add", ["xd", "sc"], "y"), ("MatMul", ["iir", "a"], "sa"),
                             ("MatMul", ["x", "b"], "xb"), ("Add", ["sa", "xb"], "iir_out")):
            nodes.append(helper.make_node(op, ins, [out]))
    else:
        nodes.append(helper.make_node("Identity", ["x"], ["y"]))
    graph = helper.make_graph(nodes, "fused_tick", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _ort_tick(work: bool):  # noqa: ANN202
    """A function running one step of the graph through the daemon's own :class:`BoundStepper`."""
    import onnxruntime as ort

    from rtdecode.runtime.binding import BoundStepper
    from rtdecode.runtime.metadata import StateSpec

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(_graph(work).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    states = [StateSpec(name=s, shape=[1, CHANNELS, n]) for s, n in STATES.items()]
    stepper = BoundStepper(sess, states, x_channels=CHANNELS, y_channels=CHANNELS)
    x = np.random.default_rng(1).standard_normal((1, CHANNELS, TICK)).astype(np.float32)
    return lambda: stepper.run(x)


def _chain_tick():  # noqa: ANN202
    """A function running the shipped chain on one 2-sample chunk (fresh times each tick)."""
    from rtdecode.dsp import build_chain
    from rtdecode.runtime.streaming import read_metadata

    chain = build_chain(read_metadata(MODEL).preprocessing, RATE_HZ, CHANNELS)
    x = (np.random.default_rng(2).standard_normal((TICK, CHANNELS)) * 50.0).astype(np.float32)
    n = {"i": 0}

    def tick() -> object:
        t = (n["i"] + np.arange(TICK)) / RATE_HZ
        n["i"] += TICK
        return chain.process(x, t)

    return tick


def main(argv: list[str] | None = None) -> int:
    """``python -m bench fused_step``."""
    ap = argparse.ArgumentParser(prog="python -m bench fused_step", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=20000)
    ap.add_argument("--out", type=Path, default=RESULTS / "fused_step.json")
    args = ap.parse_args(argv)
    variants = {"chain": _chain_tick(), "ort_floor": _ort_tick(False), "ort_iir": _ort_tick(True)}
    res: dict = {"benchmark": "fused_step", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                 "machine": machine(), "ticks": args.ticks, "stream": f"{CHANNELS} ch @ {RATE_HZ:g} Hz, "
                 f"{TICK} samples a tick", "us_per_tick": {}}
    for _round in range(2):  # interleaved rounds: the machine's slow windows fall on all variants
        for name, fn in variants.items():
            res["us_per_tick"].setdefault(name, []).append(time_calls(fn, args.ticks, warmup=500))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    for name, runs in res["us_per_tick"].items():
        print(f"{name:<10} " + " | ".join(f"p50 {r['p50']:7.2f}  p99 {r['p99']:7.2f} µs" for r in runs))
    return 0
