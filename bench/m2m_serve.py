"""M2M-Net on each pulse: how long a prediction takes, and whether it beats the measurement.

Two parts, one JSON (p50 / p90 / p99 / p99.9 / max / mean in ms):

- ``compute``: in this process, per pulse at poses drawn inside the model's training range —
  ``predict_cold_ms`` (new pose: field on the lattice, interpolation, ONNX Runtime),
  ``predict_warm_ms`` (a cached pose), and in the same run the floors ``onnx_ms`` (the graph
  alone on a ready volume) and ``lattice_ms`` (the field on the lattice alone);
- ``live``: the virtual subject (``TmsOutlets``, mapping poses) → ``rtdecode serve`` with
  ``[tms.m2m]`` (its own process) → a subscriber here, for each marker lead (how long before
  its pulse a marker is pushed): ``prediction_after_pulse_ms`` (negative: before the pulse),
  ``measurement_after_pulse_ms`` (the ``tms`` event), and the share of pulses whose
  prediction arrived before the measurement and before the post-pulse window opened (the
  muscles respond ~20 ms after the pulse).

    python -m bench.m2m_serve                         → bench/results/m2m_serve.json (the shipped model)
    python -m bench.m2m_serve --model M --pulses 6 --poses 4 --out /tmp/m.json   # a smoke run

The lead runs it on a quiet machine; numbers from a loaded machine are not results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.sysinfo import machine
from bench.tms_events import _stats_ms, _wait_running
from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.tms.m2m_model import M2mModel
from rtdecode.tms.m2m_verify import sample_poses
from rtdecode.tms.mapping import mapping_protocol
from rtdecode.tms.simulate import TmsOutlets, TmsSimulator
from rtdecode.tms.subject import VirtualSubject

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compute(model_path: Path, poses: int) -> dict[str, Any]:
    """Per-pulse cost of the prediction and its floors, in this process."""
    model = M2mModel(model_path)
    vm = model.volumes
    ps, mso = sample_poses(model, poses, seed=1)
    model.predict(ps[0], float(mso[0]))  # warm ONNX Runtime up
    vm.clear_cache()
    pairs = list(zip(ps, mso.tolist(), strict=True))
    cold = np.array([_timed(lambda p=p, m=m: model.predict(p, m)) for p, m in pairs])
    warm = np.array([_timed(lambda p=p, m=m: model.predict(p, m)) for p, m in pairs])
    vol = vm.magnitude(vm.lattice_field(ps[0]), float(mso[0]))
    onnx = np.array([_timed(lambda: model.run(vol)) for _ in range(poses)])
    lattice = np.array([_timed(lambda p=p: _lattice(vm, p)) for p in ps])
    return {"predict_cold_ms": _stats_ms(cold), "predict_warm_ms": _stats_ms(warm),
            "onnx_ms": _stats_ms(onnx), "lattice_ms": _stats_ms(lattice),
            "volume_shape": list(vm.shape), "lattice": list(vm.cfg.lattice)}


def _lattice(vm: Any, pose: Any) -> None:
    vm.clear_cache()
    vm.lattice_field(pose)


def _serve_config(work: Path, name: str, endpoint: str, model: Path) -> Path:
    cfg = work / "serve.toml"
    cfg.write_text(f'[source]\nname = "{name}"\nresolve_timeout_s = 30\n\n[sink]\nendpoint = "{endpoint}"\n'
                   'heartbeat_s = 0.5\nsndhwm = 100000\n\n[service]\nstats_interval_s = 60\n'
                   'on_behind = "none"\n\n'
                   f'[tms]\nmax_wait_s = 5\nbuffer_s = 30\n[tms.markers]\nname = "{name}-markers"\n'
                   f'[tms.m2m]\nmodel = "{model}"\n')
    return cfg


def live(model_path: Path, pulses: int, isi_s: float, lead_s: float) -> dict[str, Any]:
    """One live run: simulator → ``rtdecode serve`` → subscriber; per-pulse arrival times."""
    name = f"bench-m2m-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-m2m-"))
    endpoint = f"ipc://{work}/pub.sock"
    env = dict(os.environ, LSLAPICFG=os.environ.get("LSLAPICFG", str(ROOT / "rtdecode/data/lsl_api.cfg")))
    subject = VirtualSubject(0)
    protocol = mapping_protocol(subject.hotspot(), np.random.default_rng(9), adaptive=max(0, pulses - 49))
    sim = TmsSimulator(subject, protocol, isi_s=isi_s, first_s=1.0, seed=4, preactivation_prob=0.0)
    outlets = TmsOutlets(sim, name, marker_lead_s=lead_s)
    arrivals: dict[str, dict[int, float]] = {"pred": {}, "tms": {}, "pair": {}}
    status: dict[str, Any] = {}
    daemon = subprocess.Popen([sys.executable, "-m", "rtdecode", "--log-level", "WARNING", "serve",
                               str(_serve_config(work, name, endpoint, model_path))],
                              env=env, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    try:
        with Subscriber(endpoint) as sub, outlets:
            _wait_running(sub, 90.0)
            feeder = threading.Thread(target=outlets.run, args=(stop,), daemon=True)
            feeder.start()
            end = time.monotonic() + pulses * isi_s * 1.5 + 60
            while len(arrivals["pair"]) < pulses and time.monotonic() < end:
                m = sub.recv(0.1)
                if m is not None and m.event is not None:
                    kind = "tms" if m.topic == "tms" else ("pred" if m.event.values.shape[1] == 1 else "pair")
                    arrivals[kind].setdefault(m.event.pulse_id, pylsl.local_clock())
                elif m is not None and m.status is not None and "m2m" in m.status:
                    status = m.status["m2m"]
            stop.set()
            feeder.join(10)
    finally:
        stop.set()
        daemon.terminate()
        err = daemon.communicate(timeout=30)[1]
    return _analyse(arrivals, [outlets.t0 + k / sim.rate_hz for k in sim.pulse_samples], pulses,
                    lead_s, status, err)


def _analyse(arr: dict[str, dict[int, float]], t_pulse: list[float], pulses: int, lead_s: float,
             status: dict[str, Any], err: str) -> dict[str, Any]:
    ids = [i for i in range(min(pulses, len(t_pulse))) if i in arr["pred"] and i in arr["tms"]]
    pred = np.array([arr["pred"][i] - t_pulse[i] for i in ids])
    meas = np.array([arr["tms"][i] - t_pulse[i] for i in ids])
    return {"marker_lead_s": lead_s, "pulses": {"sent": pulses, "predicted": len(arr["pred"]),
                                                "measured": len(arr["tms"]), "paired": len(arr["pair"])},
            "prediction_after_pulse_ms": _stats_ms(pred), "measurement_after_pulse_ms": _stats_ms(meas),
            "share_predicted_before_measurement": float(np.mean(pred < meas)) if ids else None,
            "share_predicted_before_window": float(np.mean(pred < 0.020)) if ids else None,
            "daemon_status_m2m": status, "daemon_stderr_tail": err[-2000:]}


def run(model: Path, pulses: int, poses: int, isi_s: float, leads_s: list[float], out_path: Path
        ) -> dict[str, Any]:
    """The whole benchmark; writes and returns the JSON result."""
    result = {"compute": compute(model, poses),
              "live": [live(model, pulses, isi_s, lead) for lead in leads_s],
              "machine": machine(), "config": {"model": str(model), "pulses": pulses, "poses": poses,
                                               "isi_s": isi_s, "marker_leads_s": leads_s}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "tms" / "m2m_sim_small.onnx",
                    help="an M2M-Net model (default: the shipped one)")
    ap.add_argument("--pulses", type=int, default=100, help="live pulses per marker lead")
    ap.add_argument("--poses", type=int, default=50, help="poses of the compute part")
    ap.add_argument("--isi-s", type=float, default=1.0)
    ap.add_argument("--leads-s", type=float, nargs="+", default=[0.0, 0.5],
                    help="marker leads: push each marker this long before its pulse, s")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "m2m_serve.json")
    args = ap.parse_args(argv)
    r = run(args.model, args.pulses, args.poses, args.isi_s, args.leads_s, args.out)
    print(json.dumps({"compute": r["compute"], "live": [{k: v for k, v in x.items() if "stderr" not in k}
                                                       for x in r["live"]]}, indent=2))
    return 0 if all(x["pulses"]["paired"] == x["pulses"]["sent"] for x in r["live"]) else 1


if __name__ == "__main__":
    sys.exit(main())
