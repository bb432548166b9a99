"""The TMS event path as a daemon plug-in: pulses in, one event message out per pulse.

::

    EMG chunk ──on_chunk──► SampleRing (measured channels, times, chunk flags)
                     └────► TriggerDetector ──┐          (trigger mode)
    marker inlet ──poll──► MarkerParser ──────┴─► pending pulses (sorted by time)
    poll(now): for the oldest pending pulse
        window's last sample held  → extract epoch → MepMeasurer → publish
        first sample no longer held → publish zeros flagged NO_SAMPLES
        now > window end + max_wait_s → publish zeros flagged NO_SAMPLES | OUTAGE
        else → wait (poll returns that deadline so the loop wakes up for it)

Every pulse is published exactly once, in time order, under the safety contract of
docs/tms.md. ``on_chunk`` only copies samples (µs); the measurement runs in ``poll``.
"""

from __future__ import annotations

import bisect
import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rtdecode.errors import ConfigError
from rtdecode.service.telemetry import LatencyHistogram
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.sinks.protocol import EventEncoder
from rtdecode.tms.config import UV_PER_UNIT, TmsConfig
from rtdecode.tms.events import MarkerInlet, MarkerParser, Pulse, TriggerDetector
from rtdecode.tms.measure import MepMeasurer, MepResult, extract_epoch
from rtdecode.tms.ring import SampleRing
from rtdecode.types import Chunk

if TYPE_CHECKING:
    from rtdecode.config import Config
    from rtdecode.service.plugins import PluginContext

logger = logging.getLogger(__name__)

__all__ = ["TmsEvents", "build_plugin", "resolve_channels"]


def _channel_index(ref: int | str, names: list[str], where: str) -> int:
    if isinstance(ref, int):
        if not 0 <= ref < len(names):
            raise ConfigError(f"{where}: channel {ref} is outside the stream's {len(names)} "
                              "channels", f"use 0..{len(names) - 1} or a label: {names}")
        return ref
    if names.count(ref) != 1:
        raise ConfigError(f"{where}: the stream has {names.count(ref)} channels labelled {ref!r}",
                          f"use an index, or one of the labels {names}")
    return names.index(ref)


def resolve_channels(cfg: TmsConfig, names: list[str]) -> tuple[list[int], int | None]:
    """Measured channel indices and the trigger channel index (or None).

    Raises
    ------
    ConfigError
        A channel that does not exist, an ambiguous label, or the trigger channel measured.
    """
    trig = (None if cfg.trigger is None
            else _channel_index(cfg.trigger.channel, names, "tms.trigger.channel"))
    if cfg.channels is None:
        cols = [i for i in range(len(names)) if i != trig]
    else:
        cols = [_channel_index(c, names, "tms.channels") for c in cfg.channels]
    if trig is not None and trig in cols:
        raise ConfigError(f"tms.channels includes the trigger channel {names[trig]!r}",
                          "remove it from tms.channels")
    if not cols:
        raise ConfigError("tms: no channel left to measure", "set tms.channels")
    return cols, trig


class TmsEvents:
    """Daemon plug-in (:class:`rtdecode.service.plugins.Plugin`): pulse events and their
    per-channel MEP measures.

    Parameters
    ----------
    cfg : TmsConfig
        The ``[tms]`` section.
    gap_factor : float
        ``source.gap_factor``: a time step above ``gap_factor / rate_hz`` is a gap.
    """

    name = "tms"

    def __init__(self, cfg: TmsConfig, gap_factor: float = 3.0) -> None:
        self.cfg = cfg
        self.labels: list[str] = []
        self.pending: list[Pulse] = []
        self.counts = {"pulses": 0, "published": 0, "measured": 0, "no_samples": 0, "outage": 0,
                       "preactivated": 0}
        self.delay = LatencyHistogram(min_s=1e-5, max_s=100.0, bins_per_decade=100)
        self.last_pulse: int | None = None
        self._ctx: PluginContext | None = None
        self._markers: MarkerInlet | None = None
        self._parser = MarkerParser(cfg.markers.accept if cfg.markers is not None else None)
        self._trigger: TriggerDetector | None = None
        self._post_end_s = cfg.measure.post_ms[1] / 1e3
        self._gap_factor = float(gap_factor)
        self._names: list[str] = []
        self._seq = 0
        #: Observers of pulses (``on_pulse(pulse)``) and of their published measures
        #: (``on_measured(pulse, result)``), e.g. the M2M-Net predictor (rtdecode.tms.m2m_serve).
        self.listeners: list[Any] = []

    def open(self, ctx: PluginContext) -> None:
        """Check the channels, build the measurer and buffers, open the marker stream."""
        cfg, stream = self.cfg, ctx.stream
        names = list(stream.channel_names) or [f"ch{i}" for i in range(stream.n_channels)]
        cols, trig = resolve_channels(cfg, names)
        self._cols = None if cols == list(range(stream.n_channels)) else np.asarray(cols)
        self.labels = [names[i] for i in cols]
        self._names = names
        self.measurer = MepMeasurer(cfg.measure, stream.rate_hz, len(cols), UV_PER_UNIT[cfg.units])
        self.ring = SampleRing(int(math.ceil(cfg.buffer_s * stream.rate_hz)), len(cols))
        self.encoder = EventEncoder(cfg.topic, len(cols))
        self._ex = np.zeros((self.measurer.length, len(cols)), np.float32)
        self._et = np.zeros(self.measurer.length)
        if trig is not None and cfg.trigger is not None:
            self._trigger = TriggerDetector(cfg.trigger, trig)
        elif cfg.markers is not None:
            self._markers = MarkerInlet(cfg.markers).open()
        self._ctx = ctx
        logger.info("tms: measuring %d channel(s) %s at %g Hz, pulses from %s, events on %r",
                    len(cols), self.labels, stream.rate_hz, self._source(), cfg.topic)

    def _source(self) -> str:
        if self._trigger is not None:
            return f"trigger channel {self._names[self._trigger.channel]!r}"
        return f"marker stream {self._markers.name!r}" if self._markers else "markers"

    def on_chunk(self, chunk: Chunk) -> None:
        """Keep the chunk's measured channels and flags (and find trigger edges); never blocks."""
        x = chunk.samples if self._cols is None else chunk.samples[:, self._cols]
        self.ring.write(x, chunk.t_lsl, chunk.flags)
        if self._trigger is not None:
            for t in self._trigger.step(chunk.samples, chunk.t_lsl):
                self._add(self._parser.parse("trigger", t, t))

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Frames the daemon sent: nothing to do here."""

    def _add(self, pulse: Pulse | None) -> None:
        if pulse is None:
            return
        self.counts["pulses"] += 1
        bisect.insort(self.pending, pulse, key=lambda p: p.t)
        for listener in self.listeners:
            listener.on_pulse(pulse)

    def poll(self, now: float) -> float:
        """Take new markers, publish every pulse that is due; returns when to call again (LSL s)."""
        if self._markers is not None:
            for value, t in self._markers.pull():
                self._add(self._parser.parse(value, t, now))
        while self.pending:
            pulse = self.pending[0]
            state, flags = extract_epoch(self.ring, self.measurer, pulse.t, self._gap_factor,
                                         self._ex, self._et)
            expiry = pulse.t + self._post_end_s + self.cfg.max_wait_s
            if state == "ready":
                result = self.measurer.measure(self._ex, float(self._et[-1]), flags)
            elif state == "gone":
                result = self.measurer.empty(0, pulse.t)
            elif now >= expiry:
                result = self.measurer.empty(int(EventFlags.OUTAGE), pulse.t)
            else:
                return expiry
            self.pending.pop(0)
            self._publish(pulse, result)
        return math.inf

    def _publish(self, pulse: Pulse, result: MepResult) -> None:
        assert self._ctx is not None
        now = self._ctx.clock()
        frame = self.encoder.encode(
            self._seq, result.flags, result.t_last, now, pulse_id=pulse.pulse_id, t_pulse=pulse.t,
            values=result.values, channel_flags=result.channel_flags,
            window_ms=self.cfg.measure.post_ms, intensity=pulse.intensity, intensity_unit=pulse.unit)
        self._ctx.publish(frame)
        self._seq += 1
        self.last_pulse = pulse.pulse_id
        for listener in self.listeners:
            listener.on_measured(pulse, result)
        c = self.counts
        c["published"] += 1
        if result.flags & EventFlags.NO_SAMPLES:
            c["no_samples"] += 1
            logger.warning("tms: pulse %d at %.3f published without measures (%s)", pulse.pulse_id,
                           pulse.t, "samples gone from the buffer" if not result.flags
                           & EventFlags.OUTAGE else "its samples did not arrive in time")
        else:
            c["measured"] += 1
            self.delay.record_value(now - pulse.t - self._post_end_s)
        c["outage"] += bool(result.flags & EventFlags.OUTAGE)
        c["preactivated"] += bool(result.flags & EventFlags.PREACTIVATED)

    def status(self) -> dict[str, Any]:
        """Counters for the status message (under ``tms``)."""
        return {"topic": self.cfg.topic, "pulses_from": self._source(), "channels": self.labels,
                **self.counts, "pending": len(self.pending), "last_pulse": self.last_pulse,
                "markers_ignored": self._parser.ignored,
                "marker_field_errors": self._parser.field_errors,
                "delay_after_window_ms": self.delay.summary_ms()}

    def close(self) -> None:
        """Publish what is still pending, close the marker inlet (idempotent).

        Pulses whose windows are complete are measured; the others are published flagged
        ``NO_SAMPLES`` (the service stops before their samples): none is dropped silently.
        """
        if self._ctx is not None:
            self.poll(self._ctx.clock())
            if self.pending:
                logger.warning("tms: %d pulse(s) pending at shutdown: published flagged NO_SAMPLES",
                               len(self.pending))
            for pulse in self.pending:
                self._publish(pulse, self.measurer.empty(0, pulse.t))
            self.pending.clear()
            self._ctx = None
        if self._markers is not None:
            self._markers.close()
            self._markers = None


def build_plugin(section: TmsConfig, cfg: Config) -> TmsEvents | list[Any]:
    """The factory of ``plugins.FACTORIES["tms"]``: the plug-in for a ``[tms]`` section.

    With ``[tms.m2m]`` also the M2M-Net predictor that follows its pulses (docs/m2m.md).
    """
    if cfg.service.on_behind == "skip":
        logger.warning("service.on_behind = 'skip': if the daemon falls behind it drops samples, and "
                       "pulses whose windows lose samples are published flagged OUTAGE; a TMS "
                       "service should keep every sample (on_behind = 'none', docs/tms.md)")
    events = TmsEvents(section, cfg.source.gap_factor)
    if section.m2m is None:
        return events
    from rtdecode.tms.m2m_serve import M2mPredictor

    return [events, M2mPredictor(section.m2m, events)]
