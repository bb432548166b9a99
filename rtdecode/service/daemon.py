"""The daemon: startup → loop → shutdown (docs/architecture.md walks through one tick).

Startup opens things in the order that fails fastest and tells the most: bind the output (so
``rtdecode check`` sees "starting"), load and warm up the models, resolve the input stream,
check the models against it, open the topics, the fusion and the plug-ins.

The loop pulls whatever arrived and takes one of three named steps, then housekeeping::

    pull ──▶ on_chunk: admit (drop samples older than an outage; behind the input: skip the
       │              backlog older than the latency budget) ▶ input checks ▶ decoders
       │              ▶ each decoder's topic.publish ▶ fusion.feed ▶ plug-ins see the chunk
       ├──▶ on_prewake: just before a frame's chunk is due, the decoders' keep_warm steps
       └──▶ on_silence: after stale_after_s, every topic's safe value at its output rate
                        (flagged STALE), and a look for a restarted outlet
    housekeeping: the fused estimate when due, plug-ins' polls, heartbeat, stats line, limits

The pull waits no longer than the next message that is due (STALE, fused, a plug-in's), so
there is no busy loop. When the next chunk should complete a model frame, it also waits no
longer than ``service.prewake_ms`` before that chunk is due: ``on_prewake`` then runs the
decoders' keep_warm steps, so the frame's real step finds its caches warm.

Signal handlers only set a flag (during model load and warm-up, which cannot poll it, they also
abort that work); a second SIGINT forces exit. Safety contract: docs/reliability.md.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from types import FrameType

from rtdecode import __version__
from rtdecode.config import Config
from rtdecode.errors import RtdecodeError
from rtdecode.lsl import channel_labels, pylsl
from rtdecode.runtime.streaming import StreamingModel
from rtdecode.service.behind import Backlog, default_budget_s
from rtdecode.service.fusion_stage import FusionStage
from rtdecode.service.memory import limit_malloc_arenas, trim_heap
from rtdecode.service.pipeline import Pipeline
from rtdecode.service.plugins import Plugin, PluginContext, StreamFacts, build_plugins
from rtdecode.service.safe_value import safe_vectors
from rtdecode.service.status import rss_mb, stats_line, status_message
from rtdecode.service.telemetry import (
    NO_TIMER,
    STAGE_FUSION,
    STAGE_FUSION_PUBLISH,
    STAGE_PUBLISH,
    STAGE_PULL,
    STAGE_TICK,
    NullTimer,
    StageTimer,
    daemon_stage_names,
)
from rtdecode.service.topic import Outbox, Topic
from rtdecode.service.watch import InputWatch, TransitClock
from rtdecode.sinks.protocol import STATUS_TOPIC, encode_status
from rtdecode.sinks.zmq_pub import Publisher
from rtdecode.sources.lsl_inlet import LslInlet
from rtdecode.sources.pacing import set_from_handler
from rtdecode.sources.stream_choice import Layout
from rtdecode.types import Chunk, Flags

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FORCED = 130


class _StartupInterrupted(BaseException):
    """Raised by the signal handler to abort model load / warm-up (they cannot poll a flag)."""


class Daemon:
    """One input stream, its decoders (and fusion, and plug-ins), one PUB socket.

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
        self.state = self.phase = "created"
        self.publisher = Publisher.from_config(cfg.sink)
        self.outbox = Outbox(self.publisher)
        self.inlet = LslInlet(cfg.source)
        self.pipeline: Pipeline | None = None
        self.fusion: FusionStage | None = None
        self.topics: list[Topic] = []  #: one per decoder, in cfg.decoders order (fused topic apart)
        self.fused_topic: Topic | None = None
        self.plugins: list[Plugin] = build_plugins(cfg)
        self.timer: StageTimer | NullTimer = (
            StageTimer(daemon_stage_names([d.name for d in cfg.decoders]))
            if cfg.service.stage_timing else NO_TIMER)
        self.watch = InputWatch(cfg.service.stale_after_s, 0.0)
        self.backlog = Backlog(math.inf, cfg.service.on_behind)
        self.t_start = 0.0
        self.summary: dict = {}
        self._signals = 0
        self._abortable = False
        self._status_lock = threading.Lock()
        self._status_seq = 0
        self._next_hb = 0.0
        self._next_safe = math.inf
        self._next_plugin = math.inf
        self._warm_at = math.inf  #: when to wake and warm before a frame's chunk (LSL clock), s
        self._transit = TransitClock()
        self._rss_start = 0.0
        self._remaining: int | None = None
        self._stats: tuple[float, float, float, int] = (math.inf, 0.0, 0.0, 0)

    # -- signals ---------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            os.write(2, b"rtdecode: second interrupt, forcing exit\n")
            os._exit(EXIT_FORCED)
        set_from_handler(self.stop)  # never Event.set() in a handler: it may hold the event's lock
        if self._abortable:
            self._abortable = False
            raise _StartupInterrupted

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)

    # -- status ----------------------------------------------------------
    def _status(self) -> dict:
        return status_message(self, pylsl.local_clock())

    def _send_status(self) -> None:
        with self._status_lock:  # the start-up heartbeat thread sends too
            now = pylsl.local_clock()
            self.outbox.send(encode_status(STATUS_TOPIC, self._status_seq, now, status_message(self, now)))
            self._status_seq += 1
        self._next_hb = pylsl.local_clock() + self.cfg.sink.heartbeat_s

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

    # -- lifecycle -------------------------------------------------------
    def startup(self) -> None:
        """Bind, load and warm up the models, open the stream, the topics, fusion and plug-ins."""
        if self.cfg.service.malloc_arenas is not None:  # before the inlet starts liblsl threads
            limit_malloc_arenas(self.cfg.service.malloc_arenas)
        self.t_start = pylsl.local_clock()
        self._rss_start = rss_mb()
        self.state, self.phase = "starting", "binding"
        self.publisher.open()
        logger.info("rtdecode %s publishing on %s", __version__, self.publisher.bound_endpoint)
        models = self._load_models()
        if self.stop.is_set():
            return
        self.phase = "resolving the input stream"
        self._send_status()
        self.inlet.open(self.stop, on_wait=self._heartbeat_if_due, start=False,
                        layouts=[Layout(m.meta.channels, m.meta.rate_hz, f"model {m.path.name}")
                                 for m in models if m.meta is not None])
        self.phase = "checking models against the stream"
        self.pipeline = Pipeline(self.cfg.decoders, self.inlet.rate_hz, self.inlet.n_channels,
                                 self.cfg.preprocessing, counters=self.cfg.source.counters()).open(models)
        self.pipeline.attach_timer(self.timer if isinstance(self.timer, StageTimer) else None)
        budget_ms = self.cfg.service.latency_budget_ms
        self.backlog.budget_s = self.outbox.budget_s = (
            budget_ms / 1e3 if budget_ms is not None
            else default_budget_s([d.chain.rate_out_hz for d in self.pipeline.decoders]))
        self._open_topics()
        self._open_plugins(models)
        self.inlet.start()  # samples flow from now on: nothing queued while the pipeline was built
        self.state, self.phase = "running", "streaming"
        self._send_status()

    def _load_models(self) -> list[StreamingModel]:
        """Load, check the safe vectors, warm up; a signal aborts (they cannot poll a flag)."""
        self.phase = "loading models"
        self._send_status()
        self._abortable = not self.stop.is_set()
        beat_done, beat = self._startup_heartbeat()
        try:
            models = Pipeline.load_models(self.cfg.decoders)
            safe_vectors(self.cfg, [[o.name for o in m.meta.outputs] if m.meta else [] for m in models])
            self.phase = "warming up"
            self._send_status()
            for m in models:
                med = m.warm_up(self.cfg.service.warmup_runs)
                w = m.warmup
                logger.info("warmed up %s: %d runs, median step %.1f µs on %s (%s; first step %.1f ms)",
                            m.path.name, w.runs if w else 0, med * 1e6, m.provider,
                            "stable" if (w is None or w.stable) else "not stable, stopped at the limit",
                            (w.first_s if w else 0.0) * 1e3)
        finally:
            self._abortable = False
            beat_done.set()
            beat.join()
        return models

    def _open_topics(self) -> None:
        """One topic per decoder (sharing its safe value), and the fused topic."""
        assert self.pipeline is not None
        cfg, svc = self.cfg, self.cfg.service
        if cfg.fusion is not None:
            self.fusion = FusionStage(cfg.fusion, self.pipeline)
        vectors = safe_vectors(cfg, [d.names for d in self.pipeline.decoders],
                               self.fusion.n_values if self.fusion is not None else None)
        every = cfg.sink.publish == "every"
        for d in self.pipeline.decoders:
            d.safe.set_vector(vectors[d.topic])
            self.topics.append(Topic(d.topic, d.safe, self.outbox, rate_hz=d.chain.rate_out_hz,
                                     stale_max_rate_hz=svc.stale_max_rate_hz, every=every))
        if self.fusion is not None and cfg.fusion is not None:
            self.fusion.safe.set_vector(vectors[cfg.fusion.topic])
            self.fused_topic = Topic(cfg.fusion.topic, self.fusion.safe, self.outbox,
                                     rate_hz=cfg.fusion.rate_hz, stale_max_rate_hz=svc.stale_max_rate_hz)

    def _open_plugins(self, models: list[StreamingModel]) -> None:
        if not self.plugins:
            return
        info = self.inlet.info
        stream = StreamFacts(name=info.name() if info else "", source_id=info.source_id() if info else "",
                             rate_hz=self.inlet.rate_hz, n_channels=self.inlet.n_channels,
                             channel_names=channel_labels(info) if info else [])
        ctx = PluginContext(config=self.cfg, stream=stream, publish=self.outbox.send,
                            models={d.name: m.meta for d, m in zip(self.cfg.decoders, models, strict=True)
                                    if m.meta is not None},
                            clock=pylsl.local_clock)
        for p in self.plugins:
            p.open(ctx)
            self.outbox.taps.append(p.on_sent)

    def loop(self) -> None:
        """Run until stopped, the duration passes or max_samples arrived."""
        assert self.pipeline is not None
        svc, now = self.cfg.service, pylsl.local_clock()
        self.watch = InputWatch(svc.stale_after_s, now)
        self._remaining = svc.max_samples
        self._stats = (now + svc.stats_interval_s, time.process_time(), time.perf_counter(), 0)
        deadline = now + svc.duration_s if svc.duration_s else math.inf
        pulled = now
        while not self.stop.is_set():
            t = self.timer.now()
            ready = pylsl.local_clock()
            chunk = self.inlet.pull(self._wait_s(), self._remaining)
            now = pylsl.local_clock()
            busy, pulled = ready - pulled, now  # away from the inlet since the last pull returned
            if chunk is not None:
                self.timer.lap(STAGE_PULL, t)
                if self.on_chunk(chunk, now, busy):
                    logger.info("reached max_samples=%d", svc.max_samples)
                    return
            elif now >= self._warm_at:
                self.on_prewake()
            else:
                self.on_silence(now)
            self.housekeeping(now)
            if now >= deadline:
                logger.info("reached duration_s=%g", svc.duration_s)
                return

    def _wait_s(self) -> float:
        """How long the pull may block: until the next message that is due, at most poll_timeout_s."""
        due = min(self._next_safe if self.watch.stale else math.inf, self._next_plugin, self._warm_at)
        if self.fusion is not None:
            due = min(due, self.fusion.next_due)
        wait = self.cfg.service.poll_timeout_s
        return wait if due == math.inf else min(wait, max(0.0, due - pylsl.local_clock()))

    # -- the loop's steps ------------------------------------------------
    def on_chunk(self, chunk: Chunk, now: float, busy_s: float) -> bool:
        """Serve one chunk: decode, publish, fuse, show the plug-ins. True when max_samples is reached.

        ``busy_s``: how long the loop was away from the inlet before this pull, s (the backlog's
        measure of how long the chunk's samples can have queued here).
        """
        assert self.pipeline is not None
        pulled = chunk.n
        admitted = self.watch.admit(chunk, now)
        if admitted is not None and self.state == "stale":
            self._leave_stale(now)
        if admitted is not None:
            admitted = self.backlog.on_pull(admitted, now, self.inlet.waiting(), busy_s)
            self._set_behind_state()
        if admitted is None:  # all older than the outage, or skipped while behind
            return self._count(pulled)
        tm = self.timer
        t0 = tm.now()
        checked = self.pipeline.check(admitted)
        outs = self.pipeline.run(checked)
        t = tm.now()
        published = False
        newest_only = self.backlog.coalescing
        for topic, o in zip(self.topics, outs, strict=True):
            if o.y.shape[0]:
                topic.publish(o.y, o.t, o.flags, newest_only)
                published = True
        if published:
            t = tm.lap(STAGE_PUBLISH, t)
        if self.fusion is not None:
            self.fusion.feed(outs, float(checked.t_lsl[-1]))
            tm.lap(STAGE_FUSION, t)
        for p in self.plugins:
            p.on_chunk(checked)
        self._schedule_prewake(checked, now)
        tm.lap(STAGE_TICK, t0)
        return self._count(pulled)

    def _schedule_prewake(self, chunk: Chunk, pulled: float) -> None:
        """When the next chunk should complete a frame: wake ``prewake_ms`` before it is due."""
        t_new = float(chunk.t_lsl[-1])
        self._transit.update(pulled - t_new)
        lead = self.cfg.service.prewake_ms * 1e-3
        if not (lead and self.pipeline is not None and self.pipeline.warm_due):
            self._warm_at = math.inf
            return
        due = t_new + chunk.n / self.inlet.rate_hz + self._transit.delay_s
        self._warm_at = due - lead

    def on_prewake(self) -> None:
        """Shortly before a frame's chunk is due: the decoders' keep_warm steps."""
        assert self.pipeline is not None
        self._warm_at = math.inf
        self.pipeline.prewarm()

    def _count(self, n: int) -> bool:
        """Count pulled samples against max_samples; True when it is reached."""
        if self._remaining is None:
            return False
        self._remaining -= n
        return self._remaining <= 0

    def _set_behind_state(self) -> None:
        state = "behind" if self.backlog.behind else "running"
        if self.state in ("running", "behind") and state != self.state:
            self.state = state
            self._send_status()

    def on_silence(self, now: float) -> None:
        """No sample in this wait: after ``stale_after_s``, safe values and a look for the rig."""
        if self.watch.check(now):
            self._enter_stale(now)
        if not self.watch.stale:
            return
        t_src = self.inlet.last_t
        if not math.isfinite(t_src):  # silent since start-up: age counts from the daemon's start
            t_src = self.t_start
        mode = self.cfg.service.safe_value
        self._next_safe = min((topic.publish_safe(now, t_src, mode) for topic in self.topics),
                              default=math.inf)
        if self.cfg.source.reconnect:
            self.inlet.poll_reconnect()

    def housekeeping(self, now: float) -> None:
        """The fused estimate when due, plug-ins' polls, subscriptions, heartbeat and stats line."""
        if self.fusion is not None and self.fusion.due(now):
            t = self.timer.now()
            self._publish_fused()
            self.timer.lap(STAGE_FUSION_PUBLISH, t)
        if self.plugins:
            self._next_plugin = min(p.poll(now) for p in self.plugins)
        self.publisher.poll_subscriptions()  # off the send path: it is a ZeroMQ call of its own
        if now >= self._next_hb:
            self._send_status()
        if now >= self._stats[0]:
            self._log_stats(now)

    def _heartbeat_if_due(self) -> None:
        if pylsl.local_clock() >= self._next_hb:
            self._send_status()

    def _publish_fused(self) -> None:
        assert self.fusion is not None and self.fused_topic is not None
        if self.watch.stale:
            value, extra = self.fusion.safe.value(self.cfg.service.safe_value)
            self.fused_topic.publish_one(value, self.fusion.t_input, int(Flags.STALE) | extra, fresh=False)
            return
        values, t_source, flags = self.fusion.estimate()
        self.fused_topic.publish_one(values, t_source, flags, fresh=math.isfinite(t_source))

    def _log_stats(self, now: float) -> None:
        _, cpu0, wall0, samples0 = self._stats
        cpu1, wall1, samples1 = time.process_time(), time.perf_counter(), self.inlet.samples_in
        wall = wall1 - wall0
        logger.info("%s", stats_line(self, (samples1 - samples0) / wall, (cpu1 - cpu0) / wall))
        self._stats = (now + self.cfg.service.stats_interval_s, cpu1, wall1, samples1)

    def _enter_stale(self, now: float) -> None:
        self.state = "stale"
        self.inlet.reset_continuity()  # the rig may restart its sample index
        for topic in self.topics:
            topic.stale_from(now)
        logger.warning("no input for %.2f s: publishing STALE safe values (%s) at the output rate",
                       now - self.watch.stale_since, self.cfg.service.safe_value)
        self._send_status()

    def _leave_stale(self, now: float) -> None:
        assert self.pipeline is not None
        svc = self.cfg.service
        outage = self.watch.leave(now)
        self.state = "running"
        self.inlet.cancel_reconnect()
        trim_heap()  # what the replaced inlet freed, back to the system
        if svc.on_reconnect == "reset":
            self.pipeline.reset()
            if self.fusion is not None:
                self.fusion.reset()
        logger.warning("input is back after %.2f s without input (%s state); %d old samples dropped "
                       "so far", outage["silent_s"], "reset" if svc.on_reconnect == "reset" else "carried",
                       self.watch.old_dropped)
        self._send_status()

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
            for p in self.plugins:
                p.close()
            self.inlet.close()
            if self.pipeline is not None:
                self.pipeline.close()
            self.publisher.close()
            self.state = "stopped"
        lat = self.summary["latency_ms"]
        logger.info("stopped: %d samples in, %d messages out, %d send drops, age p50 %s p99 %s ms",
                    self.summary["input"]["samples_in"], self.outbox.fresh,
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
