"""End-to-end latency harness: producer process → unit under test → this (subscriber) process.

One *case* runs three processes on one host clock (``time.monotonic()`` here and in the
producer, ``pylsl.local_clock()`` in the daemon: the same CLOCK_MONOTONIC on Linux, checked
in the machine description):

1. the producer (:mod:`bench.producer`) pushes samples at the true rate in chunks, sample
   index in channel 0, and logs the push time of every chunk;
2. the unit under test: ``rtdecode serve`` with a generated config (target ``daemon``), or
   the bare transport relay (:mod:`bench.relay`, target ``bare``) — the same LSL inlet and
   ZeroMQ publisher with no decoding;
3. this process subscribes and records the receive time of every message in preallocated
   arrays, and samples the unit's CPU time and resident memory from ``/proc`` every second.

Per message: ``e2e = t_recv − push time of the newest contributing sample`` (the sample index
comes from ``t_source``, which is that sample's LSL timestamp ``t0 + i / rate``; the residual of
that mapping is reported and must stay far below half a sample), ``age = t_recv − t_source``
(includes the producer's chunking), ``hop = t_recv − t_publish`` (ZeroMQ alone).
Timings live here, never in tests.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import zmq

from bench.models import resolve
from bench.sysinfo import proc_cpu_s, proc_rss_mb
from rtdecode.lsl import lsl_config_in_use
from rtdecode.sinks.protocol import HEADER_FORMAT, KIND_STATUS, STATUS_TOPIC
from rtdecode.types import Flags

ROOT = Path(__file__).resolve().parents[1]
_HEADER = struct.Struct(HEADER_FORMAT)
_STALE = int(Flags.STALE)
_LATE = int(Flags.LATE)
#: Quantiles stored per case for the CDF plots (0 … 1).
CDF_Q = np.linspace(0.0, 1.0, 401)


@dataclass
class Case:
    """One point of a benchmark: what runs, on what stream, for how long.

    Attributes
    ----------
    id : str
        Unique name of the case in its run (file names, plots).
    target : {"daemon", "bare"}
        Unit under test.
    channels, rate_hz : int, float
        Stream shape.
    chunk : int
        Samples per producer push (default 1 ms worth).
    seconds : float
        Pushing time.
    model : str
        ``gamma`` / ``gesture`` / ``wiener`` (shipped), ``linear`` (built) or a file (daemon only).
    stage_timing : bool
        ``service.stage_timing`` of the daemon.
    providers : list of str
        ``decoders.providers`` (``cpu``, ``cuda``, ``tensorrt``).
    publish : {"every", "latest"}
        ``sink.publish``.
    group : str
        Which comparison the case belongs to (headline, channels, rates, chunks, models).
    busy_poll_s : float
        ``source.busy_poll_s`` of the daemon or the relay (0 = block in every wait).
    keep_warm : bool
        ``decoders[].keep_warm`` of the daemon.
    on_behind : str
        ``service.on_behind`` of the daemon ("" = its default).
    latency_budget_ms : float or None
        ``service.latency_budget_ms`` of the daemon (None = its default).
    data : str
        What the producer pushes (:func:`bench.producer.source_data`): ``auto``, ``noise``,
        ``otb`` or ``broadband`` (the simulated electrodes of ``rtdecode simulate broadband``).
    index_channel : bool
        Channel 0 carries the sample index (the daemon / relay count lost samples from it);
        off for data whose channel 0 the model reads (broadband: the losses come from the
        samples counted in against those pushed).
    record : bool
        Daemon with ``[record]`` on (session file in the case's work folder).
    writer_priority : str
        ``record.writer_priority`` of a recording daemon ("" = its default).
    """

    id: str
    target: str
    channels: int
    rate_hz: float
    chunk: int = 0
    seconds: float = 10.0
    model: str = "gamma"
    stage_timing: bool = True
    providers: list[str] = field(default_factory=lambda: ["cpu"])
    publish: str = "every"
    group: str = "headline"
    settle_s: float = 1.0
    busy_poll_s: float = 0.0
    keep_warm: bool = True
    on_behind: str = ""
    latency_budget_ms: float | None = None
    data: str = "auto"
    index_channel: bool = True
    record: bool = False
    writer_priority: str = ""

    def __post_init__(self) -> None:
        if self.chunk <= 0:
            self.chunk = max(1, int(round(self.rate_hz * 1e-3)))
        if self.target not in ("daemon", "bare"):
            raise ValueError(f"target must be 'daemon' or 'bare', got {self.target!r}")


def _pct(a: np.ndarray, scale: float = 1e3) -> dict[str, float | None]:
    if a.size == 0:
        return {k: None for k in ("p50", "p90", "p99", "p999", "max", "mean", "std", "n")}
    q = np.percentile(a, [50, 90, 99, 99.9]) * scale
    return {"p50": round(float(q[0]), 4), "p90": round(float(q[1]), 4), "p99": round(float(q[2]), 4),
            "p999": round(float(q[3]), 4), "max": round(float(a.max() * scale), 4),
            "mean": round(float(a.mean() * scale), 4), "std": round(float(a.std() * scale), 4),
            "n": int(a.size)}


def _config(case: Case, model: Path, name: str, endpoint: str, path: Path) -> None:
    prov = ", ".join(f'"{p}"' for p in case.providers)
    path.write_text(
        f'[source]\nname = "{name}"\nchannels = {case.channels}\nrate_hz = {case.rate_hz}\n'
        + ("index_channel = 0\n" if case.index_channel else "")
        + f"resolve_timeout_s = 60\nbusy_poll_s = {case.busy_poll_s}\n\n"
        f'[[decoders]]\nname = "dec"\nmodel = "{model}"\nproviders = [{prov}]\nintra_op_threads = 1\n'
        f"keep_warm = {'true' if case.keep_warm else 'false'}\n\n"
        f'[sink]\nendpoint = "{endpoint}"\nsndhwm = 100000\nheartbeat_s = 0.5\npublish = "{case.publish}"\n\n'
        # stale_after_s 1 s: a slow start-up on a loaded box must not look like an outage
        f"[service]\nstats_interval_s = 60\nstale_after_s = 1.0\n"
        f"stage_timing = {'true' if case.stage_timing else 'false'}\n"
        + (f'on_behind = "{case.on_behind}"\n' if case.on_behind else "")
        + (f"latency_budget_ms = {case.latency_budget_ms}\n" if case.latency_budget_ms else "")
        + (f'\n[record]\ndir = "{path.parent / (path.stem + "-sessions")}"\n' if case.record else "")
        + (f'writer_priority = "{case.writer_priority}"\n' if case.record and case.writer_priority else ""),
        encoding="utf-8")


class _Recorder:
    """Preallocated per-message arrays filled by the subscriber loop."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.n = 0
        self.t_recv = np.empty(cap)
        self.t_source = np.empty(cap)
        self.t_pub = np.empty(cap)
        self.seq = np.empty(cap, dtype=np.int64)
        self.flags = np.empty(cap, dtype=np.int64)
        self.overflow = 0

    def add(self, t_recv: float, seq: int, flags: int, t_source: float, t_pub: float) -> None:
        i = self.n
        if i >= self.cap:
            self.overflow += 1
            return
        self.t_recv[i] = t_recv
        self.seq[i] = seq
        self.flags[i] = flags
        self.t_source[i] = t_source
        self.t_pub[i] = t_pub
        self.n = i + 1

    def view(self) -> dict[str, np.ndarray]:
        n = self.n
        return {"t_recv": self.t_recv[:n], "t_source": self.t_source[:n], "t_pub": self.t_pub[:n],
                "seq": self.seq[:n], "flags": self.flags[:n]}


def run_case(case: Case, work: Path, log=lambda s: None, series: bool = False) -> dict:  # noqa: ANN001
    """Run one case; returns its result dict (see :func:`analyse`); ``series`` adds the per-message
    arrays under ``"series"`` (``t_recv`` in s on the host clock, ``e2e_s``), not for JSON."""
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{case.id}-{uuid.uuid4().hex[:6]}"
    name = f"rtdbench-{os.getpid()}-{tag}"
    endpoint = f"ipc://{work}/{tag}.sock"
    env = dict(os.environ, LSLAPICFG=lsl_config_in_use(), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    py = sys.executable
    model_desc = None
    if case.target == "daemon":
        model_path, model_desc = resolve(case.model, case.channels, case.rate_hz, work)
        cfg = work / f"{tag}.toml"
        _config(case, model_path, name, endpoint, cfg)
        cmd = [py, "-m", "rtdecode", "--log-level", "WARNING", "serve", str(cfg)]
    else:
        cmd = [py, "-m", "bench", "relay", "--name", name, "--channels", str(case.channels),
               "--rate", str(case.rate_hz), "--endpoint", endpoint, "--topic", "dec", "--n-values", "2",
               "--busy-poll-s", str(case.busy_poll_s)] + ([] if case.index_channel else ["--no-index"])
    push_log = work / f"{tag}-push.npz"
    n_samples = int(round(case.seconds * case.rate_hz))
    rec = _Recorder(n_samples + 20000)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"dec\x00")
    sock.setsockopt(zmq.SUBSCRIBE, STATUS_TOPIC.encode() + b"\x00")
    sock.connect(endpoint)
    statuses: list[dict] = []
    rss: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []
    dut_log = open(work / f"{tag}-dut.log", "w")  # noqa: SIM115
    prod_log = open(work / f"{tag}-producer.log", "w")  # noqa: SIM115
    dut = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=dut_log, stdout=dut_log)
    prod = subprocess.Popen([py, "-m", "bench", "producer", "--name", name, "--channels", str(case.channels),
                             "--rate", str(case.rate_hz), "--chunk", str(case.chunk), "--seconds",
                             str(case.seconds), "--out", str(push_log), "--data", case.data]
                            + ([] if case.index_channel else ["--no-index"]),
                            cwd=ROOT, env=env, stderr=prod_log, stdout=prod_log)
    t_start = time.monotonic()
    next_sample = t_start
    rss_start = float("nan")
    prod_end = dut_end = None
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    recv = sock.recv
    unpack = _HEADER.unpack_from
    try:
        while True:
            if poller.poll(100):
                while True:
                    try:
                        frame = recv(zmq.NOBLOCK, copy=True)
                    except zmq.Again:
                        break
                    t = time.monotonic()
                    nul = frame.find(b"\x00")
                    _m, _v, kind, flags, count, seq, ts, tpub = unpack(frame, nul + 1)
                    if kind == KIND_STATUS:
                        statuses.append(json.loads(frame[nul + 1 + _HEADER.size:].decode("utf-8")))
                    else:
                        rec.add(t, seq, flags, ts, tpub)
            now = time.monotonic()
            if now >= next_sample and dut.poll() is None:
                r = proc_rss_mb(dut.pid)
                if rec.n and rss_start != rss_start:  # first sample once data flows
                    rss_start = r
                rss.append((now - t_start, r))
                cpu.append((now, proc_cpu_s(dut.pid)))
                next_sample = now + 1.0
            if prod_end is None and prod.poll() is not None:
                prod_end = now
            if prod_end is not None and dut_end is None and now - prod_end > 1.6:
                dut.terminate()
                dut_end = now
            if dut_end is not None and (dut.poll() is not None and now - dut_end > 0.3 or now - dut_end > 15):
                break
            if prod_end is None and now - t_start > case.seconds + 120:
                raise RuntimeError(f"case {case.id}: producer still running after {case.seconds + 120:g} s; "
                                   f"see {prod_log.name}")
            if dut.poll() is not None and dut_end is None:
                raise RuntimeError(f"case {case.id}: the unit under test exited early (code "
                                   f"{dut.returncode}); see {dut_log.name}")
    finally:
        for p in (prod, dut):
            if p.poll() is None:
                p.kill()
                p.wait(5)
        sock.close(0)
        dut_log.close()
        prod_log.close()
    if prod.returncode != 0 or not push_log.exists():
        raise RuntimeError(f"case {case.id}: producer failed (code {prod.returncode}); see {prod_log.name}")
    push = dict(np.load(push_log))
    res = analyse(case, rec, push, statuses, rss, cpu, rss_start, series)
    res["model_desc"] = model_desc
    res["data"] = str(push["data"])
    res["logs"] = {"unit": dut_log.name, "producer": prod_log.name}
    e = res["e2e_ms"]
    log(f"  {case.id:<28} {case.target:<6} e2e p50 {e['p50']} p99 {e['p99']} max {e['max']} ms | "
        f"msgs {res['messages']['received']} lost {res['messages']['lost_total']} | "
        f"cpu {res['unit']['cpu_share']} | "
        f"rss {res['unit']['rss_mb']['start']}→{res['unit']['rss_mb']['end']} MB")
    return res


def rss_slope(rss: list[tuple[float, float]] | list[list[float]], rss_start: float | None) -> float | None:
    """Memory trend while data flows, MB per minute (from 1 s after the first message; None if short)."""
    if rss_start is None or rss_start != rss_start:
        return None
    t_flow = next((t for t, r in rss if r == rss_start), None)
    if t_flow is None:
        return None
    pts = [(t, r) for t, r in rss if r == r and t >= t_flow + 1.0]
    if len(pts) < 4:
        return None
    tt, rr = np.array(pts).T
    return round(float(np.polyfit(tt, rr, 1)[0] * 60), 3)


def analyse(case: Case, rec: _Recorder, push: dict, statuses: list[dict],
            rss: list[tuple[float, float]], cpu: list[tuple[float, float]], rss_start: float,
            series: bool = False) -> dict:
    """Latency, jitter, losses, CPU and memory of one case from its raw records."""
    v = rec.view()
    stale = (v["flags"] & _STALE) != 0
    late = (v["flags"] & _LATE) != 0
    t_recv, ts, tpub, seq = v["t_recv"][~stale], v["t_source"][~stale], v["t_pub"][~stale], v["seq"]
    t0, rate, chunk = float(push["t0"]), float(push["rate_hz"]), int(push["chunk"])
    push_t = push["push_t"]
    idx_f = (ts - t0) * rate
    idx = np.rint(idx_f).astype(np.int64)
    resid = np.abs(idx_f - idx)
    k = idx // chunk
    ok = (k >= 0) & (k < push_t.size)
    e2e_all = t_recv[ok] - push_t[k[ok]]
    keep = t_recv[ok] >= (t_recv[0] + case.settle_s if t_recv.size else 0)
    e2e = e2e_all[keep]
    age = (t_recv - ts)[ok][keep]
    hop = (t_recv - tpub)[ok][keep]
    inside = (tpub - push_t[np.clip(k, 0, push_t.size - 1)])[ok][keep]
    # jitter: spread of e2e, and deviation of receive intervals from push intervals
    d_inter = np.diff(e2e) if e2e.size > 1 else np.zeros(0)
    # losses
    dseq = np.diff(seq) if seq.size > 1 else np.zeros(0, dtype=np.int64)
    seq_gaps = int(np.clip(dseq - 1, 0, None).sum())
    seq_back = int((dseq <= 0).sum())
    final = next((s for s in reversed(statuses) if "input" in s), {})
    inp = final.get("input", {})
    n_pushed = int(push["n_pushed"])
    samples_missing = n_pushed - int(inp.get("samples_in", 0))
    steps = np.diff(idx[ok]) if ok.sum() > 1 else np.zeros(0, dtype=np.int64)
    expected_step = None
    frames_missing = 0
    if case.target == "daemon" and case.publish == "every" and steps.size:
        expected_step = int(np.median(steps))
        if expected_step > 0:
            frames_missing = int(np.clip(np.rint(steps / expected_step) - 1, 0, None).sum())
    cpu_share = None
    if len(cpu) >= 3:
        # CPU over the pushing window: from the first sample after data flowed to the last before the end
        first = rec.t_recv[0] if rec.n else cpu[0][0]
        last = t_recv[-1] if t_recv.size else cpu[-1][0]
        win = [c for c in cpu if first <= c[0] <= last]
        if len(win) >= 2 and win[-1][0] > win[0][0]:
            cpu_share = round((win[-1][1] - win[0][1]) / (win[-1][0] - win[0][0]), 4)
    rss_vals = [r for _, r in rss if r == r]
    slope = rss_slope(rss, rss_start)
    spread = (round(float((np.percentile(e2e, 99) - np.percentile(e2e, 50)) * 1e3), 4)
              if e2e.size else None)
    res = {
        "case": asdict(case),
        "e2e_ms": _pct(e2e),
        "age_ms": _pct(age),
        "hop_ms": _pct(hop),
        "in_unit_ms": _pct(inside),
        "jitter_ms": {"p99_minus_p50": spread,
                      "std_interarrival_deviation": (round(float(d_inter.std() * 1e3), 4)
                                                     if d_inter.size else None)},
        "e2e_cdf_ms": [round(float(x), 4) for x in (np.quantile(e2e, CDF_Q) * 1e3)] if e2e.size else [],
        "messages": {"received": int(t_recv.size), "stale_after_end": int(stale.sum()),
                     "late": int(late.sum()),
                     "seq_gaps": seq_gaps, "seq_restarts": seq_back,
                     "frames_missing": frames_missing, "expected_index_step": expected_step,
                     "subscriber_overflow": rec.overflow,
                     "lost_total": seq_gaps + frames_missing + max(samples_missing, 0) + rec.overflow},
        "input": {"samples_pushed": n_pushed, "samples_in": inp.get("samples_in"),
                  "samples_missing": samples_missing, "index_lost": inp.get("index_lost"),
                  "index_dup": inp.get("index_dup"), "gaps": inp.get("gaps"),
                  "producer_late_chunks": int(push["n_late"]),
                  "producer_max_lateness_ms": round(float(push["max_lateness_s"]) * 1e3, 3),
                  "producer_cpu_share": round(float(push["cpu_share"]), 4)},
        "index_map_residual_samples": {"max": round(float(resid.max()), 4) if resid.size else None,
                                       "unmapped": int((~ok).sum())},
        "unit": {"cpu_share": cpu_share,
                 "rss_mb": {"start": round(rss_start, 1) if rss_start == rss_start else None,
                            "end": round(rss_vals[-1], 1) if rss_vals else None,
                            "max": round(max(rss_vals), 1) if rss_vals else None,
                            "slope_mb_per_min": slope,
                            "samples": [[round(t, 1), round(r, 1)] for t, r in rss]}},
        "daemon_status": None,
    }
    if case.target == "daemon" and final:
        res["daemon_status"] = {"latency_ms": final.get("latency_ms"), "stages_ms": final.get("stages_ms"),
                                "messages_out": final.get("messages_out"),
                                "send_dropped": final.get("send_dropped"),
                                "decoders": final.get("decoders"), "behind": final.get("behind"),
                                "record": final.get("record")}
    if series:
        res["series"] = {"t_recv": t_recv[ok][keep], "e2e_s": e2e}
    return res


def run_cases(cases: list[Case], res: dict, work: Path, log=lambda s: None) -> None:  # noqa: ANN001
    """Run every case into ``res["cases"]``; one failing case is logged and listed in
    ``res["failed"]`` (the other points are still worth having)."""
    res.setdefault("cases", [])
    for c in cases:
        try:
            res["cases"].append(run_case(c, work, log=log))
        except Exception as exc:  # one failing point must not lose the others
            log(f"  {c.id}: FAILED: {exc}")
            res.setdefault("failed", []).append({"case": c.id, "error": str(exc)})


def write_result(res: dict, out: Path, work: Path, t_start: float, log=lambda s: None) -> dict:  # noqa: ANN001
    """Stamp the wall time, write the JSON, and remove the work folder unless a case failed
    (its logs are then kept for reading)."""
    res["wall_s"] = round(time.monotonic() - t_start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    log(f"wrote {out} ({res['wall_s']} s)")
    if not res.get("failed"):
        shutil.rmtree(work, ignore_errors=True)
    return res
