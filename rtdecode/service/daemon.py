"""The daemon: startup → loop → shutdown.

Startup opens things in the order that fails fastest and tells the most: bind the
output (so ``rtdecode check`` sees "starting"), load and warm up the models,
resolve the input stream, check models against it. The loop pulls whatever
arrived, runs the pipeline, publishes every output with its flags, keeps the
sample-age histogram and sends a status message every ``heartbeat_s`` even
when no input arrives. Signal handlers only set a flag; a second SIGINT forces
exit.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from types import FrameType

import numpy as np

from rtdecode import __version__
from rtdecode.config import Config
from rtdecode.errors import RtdecodeError
from rtdecode.lsl import pylsl
from rtdecode.service.fusion_stage import FusionStage
from rtdecode.service.pipeline import Pipeline
from rtdecode.service.telemetry import LatencyHistogram
from rtdecode.sinks.protocol import STATUS_TOPIC, EstimateEncoder, encode_status
from rtdecode.sinks.zmq_pub import Publisher
from rtdecode.sources.lsl_inlet import LslInlet
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FORCED = 130


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
        self.publisher = Publisher(cfg.sink.endpoint, allow_remote=cfg.sink.allow_remote,
                                   sndhwm=cfg.sink.sndhwm)
        self.inlet = LslInlet(cfg.source)
        self.pipeline: Pipeline | None = None
        self.latency = LatencyHistogram()
        self.latency_window = LatencyHistogram()
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

    # -- signals ---------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            os.write(2, b"rtdecode: second interrupt, forcing exit\n")
            os._exit(EXIT_FORCED)
        self.stop.set()

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
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(now - self._t_start, 3) if self._t_start else 0.0,
            "source": self.cfg.source.name or self.cfg.source.type or self.cfg.source.source_id,
            "input": self.inlet.counters(),
            "bad_input_samples": self.pipeline.bad_samples if self.pipeline else 0,
            "messages_out": self.messages_out,
            "stale_messages": self.stale_messages,
            "send_dropped": self.publisher.dropped,
            "latency_ms": {k: (None if not np.isfinite(v) else round(v, 4)) for k, v in lat.items()},
            "decoders": self.pipeline.describe() if self.pipeline else [],
            "fusion": self.fusion.status() if self.fusion is not None else None,
            "rss_mb": round(_rss_mb(), 1),
        }

    def _send_status(self) -> None:
        seq = self._seq.get(STATUS_TOPIC, 0)
        self._seq[STATUS_TOPIC] = seq + 1
        self.publisher.send(encode_status(STATUS_TOPIC, seq, pylsl.local_clock(), self._status()))

    def _heartbeat_if_due(self) -> None:
        now = pylsl.local_clock()
        if now >= self._next_hb:
            self._send_status()
            self._next_hb = now + self.cfg.sink.heartbeat_s

    def _publish(self, topic: str, y: np.ndarray, t: np.ndarray, flags: np.ndarray) -> None:
        enc = self._encoders[topic]
        seq = self._seq[topic]
        rows = range(y.shape[0]) if self.cfg.sink.publish == "every" else range(y.shape[0] - 1, y.shape[0])
        ages = np.empty(len(rows))
        for j, i in enumerate(rows):
            now = pylsl.local_clock()
            self.publisher.send(enc.encode(seq, int(flags[i]), float(t[i]), now, y[i]))
            ages[j] = now - t[i]
            seq += 1
        self._seq[topic] = seq
        self.messages_out += len(rows)
        self.latency.record(ages)
        self.latency_window.record(ages)

    def _publish_fused(self, input_stale: bool) -> None:
        assert self.fusion is not None and self.cfg.fusion is not None
        topic = self.cfg.fusion.topic
        value, t_source, flags = self.fusion.estimate(input_stale, self.cfg.service.safe_value)
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

    def _publish_stale(self) -> None:
        assert self.pipeline is not None
        now = pylsl.local_clock()
        for d in self.pipeline.decoders:
            if self.cfg.service.safe_value == "zero":
                value = np.zeros_like(d.last_good)
            else:
                value = d.last_good
            seq = self._seq[d.topic]
            self.publisher.send(self._encoders[d.topic].encode(
                seq, int(Flags.STALE | Flags.HOLD), float(self.inlet._last_t or np.nan), now, value))
            self._seq[d.topic] = seq + 1
            self.stale_messages += 1

    # -- lifecycle -------------------------------------------------------
    def startup(self) -> None:
        """Bind, load models, warm up, open the stream."""
        cfg = self.cfg
        self._t_start = pylsl.local_clock()
        self._rss_start = _rss_mb()
        self.state = "starting"
        self.publisher.open()
        logger.info("rtdecode %s publishing on %s", __version__, self.publisher.bound_endpoint)
        self._send_status()
        models = Pipeline.load_models(cfg.decoders)
        for m in models:
            med = m.warm_up(cfg.service.warmup_runs)
            logger.info("warmed up %s: median step %.1f µs on %s", m.path.name, med * 1e6, m.provider)
        self._next_hb = pylsl.local_clock() + cfg.sink.heartbeat_s
        self.inlet.open(self.stop, on_wait=self._heartbeat_if_due)
        self.pipeline = Pipeline(cfg.decoders, self.inlet.rate_hz, self.inlet.n_channels,
                                 cfg.preprocessing).open(models)
        for d in self.pipeline.decoders:
            self._encoders[d.topic] = EstimateEncoder(d.topic, d.last_good.size)
            self._seq[d.topic] = 0
        if cfg.fusion is not None:
            self.fusion = FusionStage(cfg.fusion, self.pipeline)
            self._encoders[cfg.fusion.topic] = EstimateEncoder(cfg.fusion.topic, self.fusion.n_values)
            self._seq[cfg.fusion.topic] = 0
        self.state = "running"
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
        cpu0, wall0 = time.process_time(), time.perf_counter()
        samples0 = 0
        deadline = t0 + svc.duration_s if svc.duration_s else None
        remaining = svc.max_samples
        while not self.stop.is_set():
            chunk = self.inlet.pull(svc.poll_timeout_s, remaining)
            now = pylsl.local_clock()
            if chunk is not None:
                last_input = now
                if stale:
                    stale = False
                    self.state = "running"
                    logger.warning("input is back after %.2f s", now - self._stale_since)
                outs = self.pipeline.process(chunk.samples, chunk.t_lsl)
                for o in outs:
                    if o.y.shape[0]:
                        self._publish(o.topic, o.y, o.t, o.flags)
                if self.fusion is not None:
                    self.fusion.feed(outs, float(chunk.t_lsl[-1]))
                if remaining is not None:
                    remaining -= chunk.n
                    if remaining <= 0:
                        logger.info("reached max_samples=%d", svc.max_samples)
                        break
            elif now - last_input > svc.stale_after_s:
                if not stale:
                    stale = True
                    self._stale_since = last_input
                    self.stale_episodes += 1
                    self.state = "stale"
                    logger.warning("no input for %.2f s: publishing STALE safe values (%s)",
                                   now - last_input, svc.safe_value)
                self._publish_stale()
            if self.fusion is not None and self.fusion.due(now):
                self._publish_fused(stale)
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
        except RtdecodeError:
            if self.stop.is_set():
                logger.info("stopped during start-up (%s)", self.state)
                return EXIT_OK
            raise
        finally:
            self.shutdown()
        return EXIT_OK
