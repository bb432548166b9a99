"""``rtdecode doctor [CONFIG]``: can this machine run the daemon within its latency budget?

Reports the execution providers (available, and what each configured decoder actually gets),
the GPU (nvidia-smi; Jetson release), the TensorRT engine cache (per TensorRT decoder: hit,
miss or stale for this model, TensorRT, GPU and precision), liblsl and the visible
streams (with the clock offset to the configured one), ZeroMQ (version, CURVE, whether the
configured endpoint can be bound) and runs a short latency self-test: N single-frame steps
of each configured model (or of a shipped model without a config) and a loopback ZeroMQ
PUB → SUB round through rtdecode's own publisher and subscriber. Exit 0 (PASS) or 1 (FAIL);
warnings (e.g. the rig's stream is not up yet, a fallback to the CPU that the config allows)
do not fail. ``--json`` prints the whole report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_MS = 5.0
DEFAULT_MODEL = "cortex_wiener.onnx"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``doctor`` sub-command."""
    p = sub.add_parser("doctor", help="check providers, GPU, LSL, ZeroMQ and a latency self-test",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("config", nargs="?", default=None, help="daemon config to check (TOML / YAML)")
    p.add_argument("--budget-ms", type=float, default=None,
                   help="p99 budget per model step and per ZeroMQ message, ms (default: the smallest "
                   f"decoder deadline_ms of the config, else {DEFAULT_BUDGET_MS:g})")
    p.add_argument("--steps", type=int, default=500, help="single-frame steps per model (default 500)")
    p.add_argument("--messages", type=int, default=300, help="ZeroMQ loopback messages (default 300)")
    p.add_argument("--model", action="append", default=None,
                   help="model(s) to time without a config (default: models/cortex_wiener.onnx)")
    p.add_argument("--lsl-timeout", type=float, default=1.0, help="LSL resolve time, s (0: skip LSL)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


# -- probes ---------------------------------------------------------------------------------
def _check(report: dict[str, Any], name: str, ok: bool, detail: str, *, level: str = "fail") -> None:
    """Record a check; ``level`` fail makes the verdict FAIL when not ok, warn only reports."""
    report["checks"].append({"name": name, "ok": bool(ok), "level": level, "detail": detail})


def _providers_section(report: dict[str, Any]) -> None:
    import onnxruntime as ort

    from rtdecode.runtime.providers import available_providers

    report["onnxruntime"] = {"version": ort.__version__, "device": ort.get_device(),
                             "build_providers": ort.get_available_providers(),
                             "available": available_providers()}


def _gpu_section(report: dict[str, Any], cfg: Any) -> None:
    from rtdecode.runtime.devices import jetson_release, nvidia_gpus, trt_cache_state
    from rtdecode.runtime.providers import default_trt_cache_dir

    gpus = nvidia_gpus()
    report["gpu"] = {"nvidia_smi": "none" if gpus is None else gpus, "jetson": jetson_release() or "none"}
    dirs = {str(default_trt_cache_dir())}
    if cfg is not None:
        for d in cfg.decoders:
            if "tensorrt" in d.providers:
                dirs.add(str(d.trt_cache_dir or default_trt_cache_dir()))
    report["tensorrt_cache"] = [trt_cache_state(Path(d)) for d in sorted(dirs)]


def _engines_section(report: dict[str, Any], cfg: Any) -> None:
    """TensorRT engine cache of each decoder that lists tensorrt: hit / miss / stale / unavailable.

    Runs before the decoders are opened (opening one on TensorRT builds a missing engine).
    """
    from rtdecode.errors import RtdecodeError
    from rtdecode.runtime import engine_cache
    from rtdecode.runtime.providers import available_providers, default_trt_cache_dir
    from rtdecode.runtime.streaming import read_metadata

    entries: list[dict[str, Any]] = []
    for d in cfg.decoders if cfg is not None else []:
        if "tensorrt" not in d.providers:
            continue
        try:
            plan = engine_cache.plan(Path(d.model), d.trt_cache_dir or default_trt_cache_dir(),
                                     x_channels=read_metadata(d.model).model_channels,
                                     max_frames=d.max_step_frames, fp16=d.fp16, device_id=d.device_id)
        except RtdecodeError as exc:  # the model is missing / broken: the decoders section says so
            entries.append({"decoder": d.name, "state": "error", "detail": str(exc).splitlines()[0]})
            continue
        entries.append({"decoder": d.name, **engine_cache.describe(plan)})
        if "tensorrt" in available_providers():
            _check(report, f"decoder {d.name}: TensorRT engine cache", plan.status.state == "hit",
                   f"{plan.status.state}: {plan.status.detail}", level="warn")
    report["tensorrt_engines"] = entries


def _model_latency(model: Any, steps: int, budget_ms: float) -> dict[str, Any]:
    from rtdecode.runtime.warmup import time_steps

    meta = model.meta
    med = model.warm_up(20)
    x = np.random.default_rng(0).standard_normal((1, meta.model_channels)).astype(np.float32)
    t = time_steps(lambda: model.step(x), steps) * 1e3
    model.reset()
    w = model.warmup
    p50, p99 = (float(np.percentile(t, 50)), float(np.percentile(t, 99))) if t.size else (0.0, 0.0)
    return {"steps": int(t.size), "p50_ms": p50, "p99_ms": p99, "max_ms": float(t.max()) if t.size else 0.0,
            "warmup_runs": w.runs if w else 0, "warmup_median_ms": med * 1e3,
            "warmup_first_ms": (w.first_s * 1e3) if w else 0.0, "ok": p99 <= budget_ms}


def _decoders_section(report: dict[str, Any], cfg: Any, models: list[str] | None, steps: int,
                      budget_ms: float) -> None:
    from rtdecode.errors import RtdecodeError
    from rtdecode.runtime.streaming import StreamingModel

    entries: list[dict[str, Any]] = []
    if cfg is not None:
        from rtdecode.service.pipeline import Pipeline

        jobs = [(d.name, str(d.model), list(d.providers), lambda d=d: Pipeline.load_models([d])[0])
                for d in cfg.decoders]
    else:
        paths = [Path(m) for m in models] if models else _default_models()
        jobs = [(p.stem, str(p), ["cpu"], lambda p=p: StreamingModel(p).open()) for p in paths]
        if not paths:
            _check(report, "latency self-test models", True,
                   f"no model given and {DEFAULT_MODEL} not found; pass --model or a config", level="warn")
    opened: list[Any] = []
    try:
        for name, path, requested, opener in jobs:
            e: dict[str, Any] = {"name": name, "model": path, "requested": requested}
            try:
                m = opener()
            except RtdecodeError as exc:
                e.update(ok=False, error=str(exc))
                entries.append(e)
                _check(report, f"decoder {name}: open", False, str(exc).splitlines()[0])
                continue
            opened.append(m)
            e.update(provider=m.provider_short, session_providers=m.session_providers,
                     io_binding=m.uses_io_binding, state_devices=sorted(set(m.state_devices())))
            e["latency"] = _model_latency(m, steps, budget_ms)
            e["ok"] = bool(e["latency"]["ok"])
            entries.append(e)
            _decoder_checks(report, name, requested, m, e["latency"], budget_ms)
        if cfg is not None and not cfg.decoders:
            _check(report, "decoders", True, "none configured: this service runs only its plug-ins "
                   f"({', '.join(_plugin_sections(cfg)) or 'none'})")
        elif cfg is not None and len(opened) == len(cfg.decoders):
            _pipeline_check(report, cfg, opened)
    finally:
        for m in opened:
            m.close()
    report["decoders"] = entries


def _plugin_sections(cfg: Any) -> list[str]:
    """The configured plug-in sections (e.g. ``[tms]``) of a service config."""
    from rtdecode.service.plugins import FACTORIES

    return [f"[{name}]" for name in FACTORIES if getattr(cfg, name, None) is not None]


def _pipeline_check(report: dict[str, Any], cfg: Any, models: list[Any]) -> None:
    """The daemon's start-up checks (channels, rate, chain, smoothing) against the configured stream."""
    from rtdecode.errors import RtdecodeError
    from rtdecode.service.pipeline import Pipeline

    meta = models[0].meta
    rate = cfg.source.rate_hz or meta.rate_hz
    channels = cfg.source.channels or meta.channels
    try:
        Pipeline(cfg.decoders, rate, channels, cfg.preprocessing, counters=cfg.source.counters()).open(models)
        _check(report, "decoders fit the configured stream", True,
               f"{channels} ch @ {rate:g} Hz: channels, rate, preprocessing chain and smoothing agree")
    except RtdecodeError as exc:
        _check(report, "decoders fit the configured stream", False, str(exc).splitlines()[0])


def _decoder_checks(report: dict[str, Any], name: str, requested: list[str], m: Any,
                    lat: dict[str, Any], budget_ms: float) -> None:
    """The provider (fallback = warning) and step-time checks of one decoder."""
    if m.provider_short != requested[0]:
        _check(report, f"decoder {name}: provider", False,
               f"asked for {requested[0]}, runs on {m.provider_short} (fallback allowed by config)",
               level="warn")
    _check(report, f"decoder {name}: step p99 within {budget_ms:g} ms", lat["ok"],
           f"{lat['steps']} single-frame steps on {m.provider_short}: p50 {lat['p50_ms']:.3f} ms, "
           f"p99 {lat['p99_ms']:.3f} ms (warm-up {lat['warmup_runs']} runs)")


def _default_models() -> list[Path]:
    env = os.environ.get("RTDECODE_MODELS")
    roots = ([Path(env)] if env else []) + [Path.cwd() / "models",
                                            Path(__file__).resolve().parents[2] / "models"]
    for root in roots:
        if (root / DEFAULT_MODEL).is_file():
            return [root / DEFAULT_MODEL]
    return []


def _lsl_section(report: dict[str, Any], cfg: Any, timeout_s: float) -> None:
    from rtdecode.lsl import lsl_config_in_use, pylsl, streams_seen

    sec: dict[str, Any] = {"config": lsl_config_in_use() or "(liblsl defaults)"}
    try:
        sec.update(library_version=pylsl.library_version(), library_info=pylsl.library_info(),
                   protocol_version=pylsl.protocol_version())
    except Exception as exc:  # liblsl missing or broken: pylsl raises RuntimeError / OSError
        sec["error"] = f"{type(exc).__name__}: {exc}"
        report["lsl"] = sec
        _check(report, "liblsl", False, sec["error"] + " (install liblsl; see docs/deployment.md)")
        return
    _check(report, "liblsl", True, f"version {sec['library_version']}, {sec['library_info']}")
    streams: list[dict[str, Any]] = []
    if timeout_s > 0:
        for info in streams_seen(timeout_s):
            streams.append({"name": info.name(), "type": info.type(), "channels": info.channel_count(),
                            "rate_hz": info.nominal_srate(), "source_id": info.source_id(),
                            "hostname": info.hostname(), "_info": info})
    if cfg is not None and timeout_s > 0:
        src = cfg.source
        match = [s for s in streams
                 if (not src.name or s["name"] == src.name) and (not src.type or s["type"] == src.type)
                 and (not src.source_id or s["source_id"] == src.source_id)]
        want = ", ".join(f"{k}={v!r}" for k, v in (("name", src.name), ("type", src.type),
                                                    ("source_id", src.source_id)) if v)
        conf: dict[str, Any] = {"selector": want, "found": bool(match)}
        if match:
            s = match[0]
            inlet = pylsl.StreamInlet(s["_info"])
            try:
                conf["clock_offset_ms"] = float(inlet.time_correction(timeout=max(1.0, timeout_s))) * 1e3
            except Exception as exc:  # pylsl TimeoutError / LostError
                conf["clock_offset_error"] = f"{type(exc).__name__}: {exc}"
            finally:
                inlet.close_stream()
            mism = []
            if src.channels is not None and s["channels"] != src.channels:
                mism.append(f"{s['channels']} channels, config says {src.channels}")
            if src.rate_hz is not None and abs(s["rate_hz"] - src.rate_hz) > src.rate_tolerance * src.rate_hz:
                mism.append(f"{s['rate_hz']:g} Hz, config says {src.rate_hz:g}")
            _check(report, "configured stream matches", not mism,
                   "; ".join(mism) or "channels and rate match")
        detail = (f"found, clock offset {conf['clock_offset_ms']:.3f} ms" if "clock_offset_ms" in conf
                  else "found" if match else f"no stream with {want} within {timeout_s:g} s (is the rig "
                  "streaming? is LSLAPICFG right for this network?)")
        _check(report, "configured stream visible", bool(match), detail, level="warn")
        sec["configured_stream"] = conf
    sec["streams"] = [{k: v for k, v in s.items() if k != "_info"} for s in streams]
    report["lsl"] = sec


def _zmq_section(report: dict[str, Any], cfg: Any, messages: int, budget_ms: float) -> None:
    import zmq

    from rtdecode.errors import RtdecodeError
    from rtdecode.sinks.zmq_pub import Publisher

    sec: dict[str, Any] = {"libzmq": zmq.zmq_version(), "pyzmq": zmq.pyzmq_version(),
                           "curve": bool(zmq.has("curve"))}
    if cfg is not None:
        sec["endpoint"] = cfg.sink.endpoint
        try:
            pub = Publisher.from_config(cfg.sink).open()
            pub.close()
            sec["bindable"] = True
            _check(report, "sink endpoint bindable", True, f"{cfg.sink.endpoint} can be bound")
        except RtdecodeError as exc:
            sec["bindable"] = False
            sec["error"] = str(exc)
            _check(report, "sink endpoint bindable", False,
                   f"{exc.what} (is a daemon already running on it?)")
    try:
        sec["loopback"] = _zmq_loopback(messages)
        lb = sec["loopback"]
        ok = lb["received"] == lb["messages"] and lb["p99_ms"] <= budget_ms
        lb["ok"] = ok
        _check(report, f"ZeroMQ loopback p99 within {budget_ms:g} ms", ok,
               f"{lb['received']}/{lb['messages']} messages, p50 {lb['p50_ms']:.3f} ms, "
               f"p99 {lb['p99_ms']:.3f} ms")
    except RtdecodeError as exc:
        sec["loopback"] = {"ok": False, "error": str(exc)}
        _check(report, "ZeroMQ loopback", False, exc.what)
    report["zmq"] = sec


def _zmq_loopback(messages: int) -> dict[str, Any]:
    """Send ``messages`` estimates PUB → SUB over tcp loopback, one at a time; age at receipt, ms."""
    from rtdecode.errors import SinkError
    from rtdecode.lsl import pylsl
    from rtdecode.sinks.client import Subscriber
    from rtdecode.sinks.protocol import EstimateEncoder
    from rtdecode.sinks.zmq_pub import Publisher

    enc = EstimateEncoder("doctor", 2)
    values = np.zeros(2, np.float32)
    ages = []
    with Publisher("tcp://127.0.0.1:*") as pub, Subscriber(pub.bound_endpoint, topics=["doctor"]) as sub:
        # slow joiner: probe until the subscription is through (at most 3 s)
        deadline = pylsl.local_clock() + 3.0
        while True:
            pub.send(enc.encode(0, 0, 0.0, pylsl.local_clock(), values))
            if sub.recv(timeout_s=0.05) is not None:
                break
            if pylsl.local_clock() > deadline:
                raise SinkError("ZeroMQ loopback: the subscriber got nothing within 3 s",
                                "check that tcp://127.0.0.1 is usable (firewall, sandbox)")
        while sub.recv(timeout_s=0.01) is not None:  # drain the probes
            pass
        for seq in range(1, messages + 1):
            pub.send(enc.encode(seq, 0, 0.0, pylsl.local_clock(), values))
            msg = sub.recv(timeout_s=1.0)
            if msg is None:
                continue
            ages.append((pylsl.local_clock() - msg.t_publish) * 1e3)
    a = np.asarray(ages) if ages else np.zeros(1)
    return {"messages": messages, "received": len(ages), "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


# -- command --------------------------------------------------------------------------------
def collect(config: str | None, *, budget_ms: float | None = None, steps: int = 500, messages: int = 300,
            models: list[str] | None = None, lsl_timeout_s: float = 1.0) -> dict[str, Any]:
    """Run every probe and the self-test; the report as a JSON-ready dict (``verdict`` PASS / FAIL).

    Raises
    ------
    ConfigError
        When the config does not validate (before anything is probed).
    """
    from rtdecode import __version__
    from rtdecode.config import load_config

    cfg = load_config(config) if config is not None else None
    if budget_ms is None:
        deadlines = [float(dl) for d in (cfg.decoders if cfg else [])
                     if (dl := getattr(d, "deadline_ms", None)) is not None]
        budget_ms = min(deadlines) if deadlines else DEFAULT_BUDGET_MS
    budget = float(budget_ms)
    report: dict[str, Any] = {"rtdecode": __version__, "python": sys.version.split()[0],
                              "platform": platform.platform(), "machine": platform.machine(),
                              "config": config, "budget_ms": budget, "checks": []}
    _providers_section(report)
    _gpu_section(report, cfg)
    _engines_section(report, cfg)
    _decoders_section(report, cfg, models, steps, budget)
    _lsl_section(report, cfg, lsl_timeout_s)
    _zmq_section(report, cfg, messages, budget)
    failed = [c for c in report["checks"] if not c["ok"] and c["level"] == "fail"]
    report["verdict"] = "FAIL" if failed else "PASS"
    return report


def format_report(r: dict[str, Any]) -> str:
    """The report as short text."""
    ort_ = r["onnxruntime"]
    gpu = r["gpu"]
    gpus = gpu["nvidia_smi"]
    gpu_txt = "none" if gpus == "none" else "; ".join(
        g.get("error") or f"{g['name']} ({g['memory_used_mib']}/{g['memory_total_mib']} MiB, driver "
        f"{g['driver']})" for g in gpus) or "nvidia-smi lists none"
    lines = [f"rtdecode {r['rtdecode']} · Python {r['python']} · {r['platform']}",
             f"onnxruntime {ort_['version']}: providers available {', '.join(ort_['available'])}",
             f"GPU: {gpu_txt}; Jetson: {gpu['jetson']}"]
    for c in r["tensorrt_cache"]:
        state = (f"{len(c['files'])} files, {c['total_bytes'] / 1e6:.1f} MB" if c["exists"]
                 else "absent (the first TensorRT start builds the engine: minutes)")
        lines.append(f"TensorRT cache {c['dir']}: {state}{'' if c['writable'] else ', NOT writable'}")
    for e in r.get("tensorrt_engines", []):
        lines.append(f"TensorRT engine of decoder {e['decoder']}: {e['state']} ({e['detail']})")
    for d in r["decoders"]:
        if "latency" in d:
            lat = d["latency"]
            lines.append(f"decoder {d['name']}: asked {','.join(d['requested'])} → {d['provider']} "
                         f"({'IOBinding' if d['io_binding'] else 'plain run'}); step p50 "
                         f"{lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms")
        else:
            lines.append(f"decoder {d['name']}: cannot open: {d['error'].splitlines()[0]}")
    lsl = r["lsl"]
    if "library_version" in lsl:
        names = ", ".join(s["name"] for s in lsl["streams"]) or "none"
        lines.append(f"liblsl {lsl['library_version']} (config {lsl['config']}); streams: {names}")
    z = r["zmq"]
    lines.append(f"ZeroMQ {z['libzmq']} (pyzmq {z['pyzmq']}), CURVE {'yes' if z['curve'] else 'no'}"
                 + (f"; {z['endpoint']} bindable: {z.get('bindable')}" if "endpoint" in z else ""))
    lines.append("")
    for c in r["checks"]:
        mark = "ok  " if c["ok"] else ("FAIL" if c["level"] == "fail" else "warn")
        lines.append(f"[{mark}] {c['name']}: {c['detail']}")
    lines.append(f"verdict: {r['verdict']} (budget {r['budget_ms']:g} ms)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report (text or JSON); exit 0 on PASS, 1 on FAIL."""
    report = collect(args.config, budget_ms=args.budget_ms, steps=args.steps, messages=args.messages,
                     models=args.model, lsl_timeout_s=args.lsl_timeout)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(format_report(report) + "\n")
    return 0 if report["verdict"] == "PASS" else 1
