"""The daemon: startup → loop → shutdown.

Startup opens things in the order that fails fastest and tells the most: bind the
output (so ``rtdecode check`` sees "starting"), load and warm up the models,
resolve the input stream, check models against it. The loop pulls whatever
arrived, runs the pipeline, publishes every output with its flags, keeps the
sample-age histogram and sends a status message every ``heartbeat_s`` even
when no input arrives. Signal handlers only set a flag (during model load and
warm-up, which cannot poll it, they also abort that work); a second SIGINT forces
exit.

Safety contract (docs/reliability.md): when no sample arrives for
``service.stale_after_s`` the loop publishes the safe value on every topic at that
topic's output rate (capped at ``stale_max_rate_hz``), flagged STALE, and looks for
a restarted outlet; when input returns, samples older than the outage are dropped
(counted), state is reset or carried (``service.on_reconnect``) and flags clear.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import signal
import threading
import time
from types import FrameType

import numpy as np

from rtdecode import __version__
from rtdecode.config import Config
from rtdecode.errors import ConfigError, RtdecodeError
from rtdecode.lsl import pylsl
from rtdecode.runtime.engine_cache import build_phase
from rtdecode.service.fusion_stage import FusionStage
from rtdecode.service.pipeline import Pipeline
from rtdecode.service.plugin_shim import PluginContext, PluginHost, TeePublisher
from rtdecode.service.telemetry import (
    STAGE_FUSION,
    STAGE_FUSION_PUBLISH,
    STAGE_PUBLISH,
    STAGE_PULL,
    STAGE_TICK,
    LatencyHistogram,
    StageTimer,
    daemon_stage_names,
)
from rtdecode.sinks.protocol import STATUS_TOPIC, EstimateEncoder, encode_status
from rtdecode.sinks.zmq_pub import Publisher
from rtdecode.sources.lsl_inlet import LslInlet
from rtdecode.sources.stream_choice import Layout
from rtdecode.types import Chunk, Flags

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FORCED = 130


class _StartupInterrupted(BaseException):
    """Raised by the signal handler to abort model load / warm-up (they cannot poll a flag)."""


def _rss_mb() -> float:
    """Resident memory of this process, MB (Linux /proc, else peak RSS)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


class Daemon:
    """One input stream, its decoders, one PUB socket.

    Parameters
    ----------
    cfg : Config
        Validated configuration.
    stop_event : threading.Event, optional
        Set it to stop the loop (tests, embedding). Signals set it too.
    """

    def __init__(self, cfg: Config, stop_event: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.stop = stop_event or threading.Event()
        self.state = "created"
        self.plugins = PluginHost.from_config(cfg)
        self.publisher = TeePublisher(Publisher.from_config(cfg.sink), self.plugins)
        self.inlet = LslInlet(cfg.source)
        self.pipeline: Pipeline | None = None
        self.latency = LatencyHistogram()
        self.latency_window = LatencyHistogram()
        self.stages: StageTimer | None = (
            StageTimer(daemon_stage_names([d.name for d in cfg.decoders]))
            if cfg.service.stage_timing else None)
        self.messages_out = 0
        self.stale_messages = 0
        self.stale_episodes = 0
        self._seq: dict[str, int] = {}
        self._encoders: dict[str, EstimateEncoder] = {}
        self._signals = 0
        self._t_start = 0.0
        self._next_hb = 0.0
        self._stale_since = 0.0
        self._rss_start = 0.0
        self.summary: dict = {}
        self.fusion: FusionStage | None = None
        self.phase = "created"
        self.old_dropped = 0
        self.last_outage: dict[str, float] = {}
        self._abortable = False
        self._status_lock = threading.Lock()
        self._stale = False
        self._recovering = False
        self._t_detect = math.nan
        self._t_served = -math.inf
        self._gap_flag = 0
        self._safe: dict[str, np.ndarray] = {}
        self._stale_period: dict[str, float] = {}
        self._stale_next: dict[str, float] = {}

    # -- signals ---------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            os.write(2, b"rtdecode: second interrupt, forcing exit\n")
            os._exit(EXIT_FORCED)
        self.stop.set()
        if self._abortable:
            self._abortable = False
            raise _StartupInterrupted

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)

    # -- publishing ------------------------------------------------------
    def _status(self) -> dict:
        lat = self.latency.summary_ms()
        now = pylsl.local_clock()
        return {
            "state": self.state,
            "reason": self._reason(now),
            "phase": build_phase(self.phase),  # "building TensorRT engine …" while one builds
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(now - self._t_start, 3) if self._t_start else 0.0,
            "source": self.cfg.source.name or self.cfg.source.type or self.cfg.source.source_id,
            "input": self.inlet.counters(),
            "bad_input_samples": self.pipeline.bad_samples if self.pipeline else 0,
            "out_of_range_samples": self.pipeline.out_of_range_samples if self.pipeline else 0,
            "messages_out": self.messages_out,
            "stale_messages": self.stale_messages,
            "stale_episodes": self.stale_episodes,
            "stale_for_s": round(now - self._stale_since, 3) if self._stale else 0.0,
            "last_outage": self.last_outage,
            "old_samples_dropped": self.old_dropped,
            "send_dropped": self.publisher.dropped,
            "sink": self.publisher.status(),
            "latency_ms": {k: (None if not np.isfinite(v) else round(v, 4)) for k, v in lat.items()},
            "decoders": self.pipeline.describe() if self.pipeline else [],
            "fusion": self.fusion.status() if self.fusion is not None else None,
            "rss_mb": round(_rss_mb(), 1),
            "stages_ms": self.stages.summary_ms() if self.stages is not None else None,
            **self.plugins.status(),
        }

    def _reason(self, now: float) -> str:
        """One line for ``rtdecode check``: why the state is what it is."""
        if self.state == "stale":
            src = self.cfg.source
            why = (f"no input from {src.name or src.type or src.source_id} for "
                   f"{now - self._stale_since:.1f} s (episode {self.stale_episodes}); publishing "
                   f"'{self.cfg.service.safe_value}' safe values flagged STALE")
            if self.inlet.last_rejection:
                why += f"; refused a new outlet: {self.inlet.last_rejection}"
            return why
        if self.state == "starting":
            return build_phase(self.phase)
        if self.state in ("stopping", "stopped"):
            return "daemon is shutting down"
        failing = [d.name for d in self.pipeline.decoders if d.failing] if self.pipeline else []
        if failing:
            return f"decoding; failing decoders (DEGRADED output): {', '.join(failing)}"
        return "decoding"

    def _send_status(self) -> None:
        with self._status_lock:  # the start-up heartbeat thread sends too
            seq = self._seq.get(STATUS_TOPIC, 0)
            self._seq[STATUS_TOPIC] = seq + 1
            self.publisher.send(encode_status(STATUS_TOPIC, seq, pylsl.local_clock(), self._status()))

    def _startup_heartbeat(self) -> tuple[threading.Event, threading.Thread]:
        """Keep the status going while models load / warm up (they block the main thread).

        Only this thread uses the socket until the returned event is set and it is joined.
        """
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.cfg.sink.heartbeat_s):
                self._send_status()

        t = threading.Thread(target=beat, name="rtdecode-startup-heartbeat", daemon=True)
        t.start()
        return done, t

    def _heartbeat_if_due(self) -> None:
        now = pylsl.local_clock()
        if now >= self._next_hb:
            self._send_status()
            self._next_hb = now + self.cfg.sink.heartbeat_s

    def _publish(self, topic: str, y: np.ndarray, t: np.ndarray, flags: np.ndarray) -> None:
        enc = self._encoders[topic]
        seq = self._seq[topic]
        n = y.shape[0]
        first = 0 if self.cfg.sink.publish == "every" else n - 1
        send, lat, win = self.publisher.send, self.latency, self.latency_window
        for i in range(first, n):  # no arrays per message: scalar histogram updates
            now = pylsl.local_clock()
            ts = float(t[i])
            send(enc.encode(seq, int(flags[i]), ts, now, y[i]))
            lat.record_value(now - ts)
            win.record_value(now - ts)
            seq += 1
        self._seq[topic] = seq
        self.messages_out += n - first

    def _publish_fused(self, input_stale: bool) -> None:
        assert self.fusion is not None and self.cfg.fusion is not None
        topic = self.cfg.fusion.topic
        value, t_source, flags = self.fusion.estimate(input_stale, self.cfg.service.safe_value,
                                                      self._safe.get(topic))
        now = pylsl.local_clock()
        seq = self._seq[topic]
        self.publisher.send(self._encoders[topic].encode(seq, flags, t_source, now, value))
        self._seq[topic] = seq + 1
        if not input_stale and np.isfinite(t_source):
            self.latency.record(now - t_source)
            self.latency_window.record(now - t_source)
            self.messages_out += 1
        else:
            self.stale_messages += 1

    def _publish_stale(self, now: float) -> float:
        """Publish the safe value on each decoder topic whose next STALE message is due.

        Each topic has its own schedule at its output rate (capped at
        ``service.stale_max_rate_hz``). Returns the local-clock time of the next one, s.
        """
        assert self.pipeline is not None
        hold = self.cfg.service.safe_value == "hold"
        flags = int(Flags.STALE | Flags.HOLD) if hold else int(Flags.STALE)
        t_src = self.inlet.last_t
        if not math.isfinite(t_src):  # silent since start-up: age counts from the daemon's start
            t_src = self._t_start
        nxt = math.inf
        for d in self.pipeline.decoders:
            topic = d.topic
            due = self._stale_next[topic]
            if now >= due:
                value = d.last_good if hold else self._safe[topic]
                seq = self._seq[topic]
                self.publisher.send(self._encoders[topic].encode(seq, flags, t_src, now, value))
                self._seq[topic] = seq + 1
                self.stale_messages += 1
                period = self._stale_period[topic]
                due = due + period if now - due < period else now + period
                self._stale_next[topic] = due
            nxt = min(nxt, due)
        return nxt

    def _enter_stale(self, now: float, last_input: float) -> None:
        self._stale = self._recovering = True
        self._stale_since = last_input
        self._t_detect = now
        self.stale_episodes += 1
        self.state = "stale"
        self.inlet.reset_continuity()  # the rig may restart its sample index
        for topic in self._stale_next:
            self._stale_next[topic] = now
        logger.warning("no input for %.2f s: publishing STALE safe values (%s) at the output rate",
                       now - last_input, self.cfg.service.safe_value)
        self._send_status()
        self._next_hb = now + self.cfg.sink.heartbeat_s

    def _leave_stale(self, now: float) -> None:
        assert self.pipeline is not None
        svc = self.cfg.service
        self._stale = False
        self.state = "running"
        self.inlet.cancel_reconnect()
        if svc.on_reconnect == "reset":
            self.pipeline.reset()
            if self.fusion is not None:
                self.fusion.reset()
        self.last_outage = {"silent_s": round(now - self._stale_since, 3),
                            "detect_s": round(self._t_detect - self._stale_since, 3),
                            "stale_s": round(now - self._t_detect, 3)}
        logger.warning("input is back after %.2f s without input (%s state); %d old samples dropped "
                       "so far", now - self._stale_since,
                       "reset" if svc.on_reconnect == "reset" else "carried", self.old_dropped)
        self._send_status()
        self._next_hb = now + self.cfg.sink.heartbeat_s

    def _fresh_part(self, chunk: Chunk, now: float) -> Chunk | None:
        """After an outage: drop samples older than the outage, never serve them as fresh.

        A sample is old when it is not newer than the last sample served before the
        outage, or when it arrives more than ``stale_after_s`` after its timestamp
        (a backlog flushed by a producer or by liblsl). Returns the fresh part, or None.
        """
        t = chunk.t_lsl
        fresh = (t > self._t_served) & (now - t <= self.cfg.service.stale_after_s)
        if fresh.all():
            self._recovering = False
            return chunk
        k = int(np.argmax(fresh)) if fresh.any() else chunk.n
        self.old_dropped += k
        self._gap_flag = int(Flags.GAP)  # the served data skips the dropped samples
        if k == chunk.n:
            return None
        self._recovering = False
        return Chunk(samples=chunk.samples[k:], t_lsl=t[k:], first_index=chunk.first_index + k)

    def _check_safe_vectors(self, outputs: list[list[str]]) -> None:
        """Safe values per decoder topic: zeros, or the configured vector (checked here)."""
        svc = self.cfg.service
        for dcfg, outs in zip(self.cfg.decoders, outputs, strict=True):
            k = len(outs)
            if svc.safe_value != "vector":
                self._safe[dcfg.out_topic] = np.zeros(k, np.float32)
                continue
            vec = dcfg.safe_vector if dcfg.safe_vector is not None else svc.safe_vector
            where = (f"decoders[{dcfg.name}].safe_vector" if dcfg.safe_vector is not None
                     else "service.safe_vector")
            if vec is None:
                raise ConfigError(f"service.safe_value = 'vector' but neither service.safe_vector nor "
                                  f"decoders[{dcfg.name}].safe_vector is set",
                                  f"set service.safe_vector to {k} values ({', '.join(outs)})")
            if len(vec) != k:
                raise ConfigError(f"{where} has {len(vec)} values; decoder {dcfg.name!r} has {k} "
                                  f"outputs ({', '.join(outs)})",
                                  f"give {k} values, or set decoders[{dcfg.name}].safe_vector")
            self._safe[dcfg.out_topic] = np.asarray(vec, np.float32)

    # -- lifecycle -------------------------------------------------------
    def startup(self) -> None:
        """Bind, load models, warm up, open the stream."""
        cfg = self.cfg
        self._t_start = pylsl.local_clock()
        self._rss_start = _rss_mb()
        self.state = "starting"
        self.phase = "binding"
        self.publisher.open()
        logger.info("rtdecode %s publishing on %s", __version__, self.publisher.bound_endpoint)
        self.phase = "loading models"
        self._send_status()
        self._abortable = not self.stop.is_set()  # a signal now aborts load / warm-up
        beat_done, beat = self._startup_heartbeat()
        try:
            models = Pipeline.load_models(cfg.decoders)
            self._check_safe_vectors([[o.name for o in m.meta.outputs] if m.meta else []
                                      for m in models])
            self.phase = "warming up"
            self._send_status()
            for m in models:
                med = m.warm_up(cfg.service.warmup_runs)
                w = m.warmup
                logger.info("warmed up %s: %d runs, median step %.1f µs on %s (%s; first step %.1f ms)",
                            m.path.name, w.runs if w else 0, med * 1e6, m.provider,
                            "stable" if (w is None or w.stable) else "not stable, stopped at the limit",
                            (w.first_s if w else 0.0) * 1e3)
        finally:
            self._abortable = False
            beat_done.set()
            beat.join()
        if self.stop.is_set():
            return
        self._next_hb = pylsl.local_clock() + cfg.sink.heartbeat_s
        self.phase = "resolving the input stream"
        self._send_status()
        self.inlet.open(self.stop, on_wait=self._heartbeat_if_due,
                        layouts=[Layout(m.meta.channels, m.meta.rate_hz, f"model {m.path.name}")
                                 for m in models if m.meta is not None])
        self.phase = "checking models against the stream"
        self.pipeline = Pipeline(cfg.decoders, self.inlet.rate_hz, self.inlet.n_channels,
                                 cfg.preprocessing).open(models)
        self.pipeline.attach_timer(self.stages)
        for d in self.pipeline.decoders:
            self._encoders[d.topic] = EstimateEncoder(d.topic, d.last_good.size)
            self._seq[d.topic] = 0
            self._stale_period[d.topic] = 1.0 / min(d.chain.rate_out_hz, cfg.service.stale_max_rate_hz)
            self._stale_next[d.topic] = 0.0
        if cfg.fusion is not None:
            self.fusion = FusionStage(cfg.fusion, self.pipeline)
            self._encoders[cfg.fusion.topic] = EstimateEncoder(cfg.fusion.topic, self.fusion.n_values)
            self._seq[cfg.fusion.topic] = 0
            vec = cfg.service.safe_vector
            if cfg.service.safe_value == "vector":
                if vec is None or len(vec) != self.fusion.n_values:
                    raise ConfigError(f"service.safe_vector has {len(vec) if vec else 0} values; the "
                                      f"fused topic {cfg.fusion.topic!r} has {self.fusion.n_values}",
                                      f"give {self.fusion.n_values} values in service.safe_vector "
                                      "(decoders with other output counts: decoders[...].safe_vector)")
                self._safe[cfg.fusion.topic] = np.asarray(vec, np.float32)
        self.plugins.open(PluginContext.from_daemon(self))
        self.state = "running"
        self.phase = "streaming"
        self._send_status()

    def loop(self) -> None:
        """Run until stopped, the duration passes or max_samples arrived."""
        assert self.pipeline is not None
        cfg = self.cfg
        svc = cfg.service
        t0 = pylsl.local_clock()
        next_stats = t0 + svc.stats_interval_s
        last_input = t0
        stale = False
        next_stale = math.inf
        reconnect = cfg.source.reconnect
        cpu0, wall0 = time.process_time(), time.perf_counter()
        samples0 = 0
        deadline = t0 + svc.duration_s if svc.duration_s else None
        remaining = svc.max_samples
        tm = self.stages
        tp = 0
        while not self.stop.is_set():
            # wait for input no longer than the next STALE / fused message (no busy loop)
            timeout = svc.poll_timeout_s
            if stale or self.fusion is not None:
                due = min(next_stale if stale else math.inf,
                          self.fusion.next_due if self.fusion is not None else math.inf)
                timeout = min(timeout, max(0.0, due - pylsl.local_clock()))
            if tm is not None:
                tp = time.perf_counter_ns()
            chunk = self.inlet.pull(timeout, remaining)
            now = pylsl.local_clock()
            if chunk is not None and self._recovering:
                chunk = self._fresh_part(chunk, now)
            if chunk is not None:
                if tm is not None:
                    tq = time.perf_counter_ns()
                    tm.add_ns(STAGE_PULL, tq - tp)
                last_input = now
                if stale:
                    stale = False
                    self._leave_stale(now)
                self.plugins.on_chunk(chunk, self.inlet.chunk_flags | self._gap_flag)
                outs = self.pipeline.process(chunk.samples, chunk.t_lsl,
                                             self.inlet.chunk_flags | self._gap_flag)
                self._gap_flag = 0
                self._t_served = float(chunk.t_lsl[-1])
                if tm is not None:
                    tp = time.perf_counter_ns()
                published = False
                for o in outs:
                    if o.y.shape[0]:
                        self._publish(o.topic, o.y, o.t, o.flags)
                        published = True
                if tm is not None:
                    tr = time.perf_counter_ns()
                    if published:
                        tm.add_ns(STAGE_PUBLISH, tr - tp)
                if self.fusion is not None:
                    self.fusion.feed(outs, float(chunk.t_lsl[-1]))
                    if tm is not None:
                        tp, tr = tr, time.perf_counter_ns()
                        tm.add_ns(STAGE_FUSION, tr - tp)
                if tm is not None:
                    tm.add_ns(STAGE_TICK, tr - tq)
                if remaining is not None:
                    remaining -= chunk.n
                    if remaining <= 0:
                        logger.info("reached max_samples=%d", svc.max_samples)
                        break
            elif now - last_input > svc.stale_after_s:
                if not stale:
                    stale = True
                    self._enter_stale(now, last_input)
                next_stale = self._publish_stale(now)
                if reconnect:
                    self.inlet.poll_reconnect()
            if self.fusion is not None and self.fusion.due(now):
                if tm is not None:
                    tp = time.perf_counter_ns()
                self._publish_fused(stale)
                if tm is not None:
                    tm.add_ns(STAGE_FUSION_PUBLISH, time.perf_counter_ns() - tp)
            self._heartbeat_if_due()
            if now >= next_stats:
                cpu1, wall1 = time.process_time(), time.perf_counter()
                lat = self.latency_window.summary_ms()
                c = self.inlet.counters()
                logger.info(
                    "in %.1f Hz | out %d msg | gaps %d lost %d | age p50 %.2f p99 %.2f max %.2f ms | "
                    "cpu %.0f%% | rss %.0f MB",
                    (c["samples_in"] - samples0) / (wall1 - wall0), self.messages_out,
                    c["gaps"], c["index_lost"] + c["missing_samples"], lat["p50"], lat["p99"],
                    lat["max"], 100 * (cpu1 - cpu0) / (wall1 - wall0), _rss_mb())
                self.latency_window.reset()
                cpu0, wall0, samples0 = cpu1, wall1, c["samples_in"]
                next_stats = now + svc.stats_interval_s
            if deadline is not None and now >= deadline:
                logger.info("reached duration_s=%g", svc.duration_s)
                break

    def shutdown(self) -> None:
        """Send a final status, close everything (idempotent)."""
        if self.state == "stopped":
            return
        self.state = "stopping"
        try:
            if self.publisher.is_open:
                self._send_status()
        finally:
            self.summary = self._status()
            self.summary["rss_start_mb"] = round(self._rss_start, 1)
            self.plugins.close()
            self.inlet.close()
            if self.pipeline is not None:
                self.pipeline.close()
            self.publisher.close()
            self.state = "stopped"
        lat = self.summary["latency_ms"]
        logger.info("stopped: %d samples in, %d messages out, %d send drops, age p50 %s p99 %s ms",
                    self.summary["input"]["samples_in"], self.messages_out,
                    self.summary["send_dropped"], lat["p50"], lat["p99"])

    def run(self) -> int:
        """Startup, loop, shutdown. Returns the process exit code (0 on a clean stop)."""
        self._install_signals()
        try:
            self.startup()
            if not self.stop.is_set():
                self.loop()
        except _StartupInterrupted:
            logger.info("stopped during start-up (%s)", self.phase)
            return EXIT_OK
        except RtdecodeError:
            if self.stop.is_set():
                logger.info("stopped during start-up (%s)", self.state)
                return EXIT_OK
            raise
        finally:
            self.shutdown()
        return EXIT_OK
