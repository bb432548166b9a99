"""Serving M2M-Net on each pulse: the prediction first, then the measured MEPs beside it.

::

    TmsEvents._add(pulse) ──on_pulse──► job queue ──► worker thread: volume (cached per pose)
                                                       + ONNX Runtime → Prediction
    poll(now) (loop thread): publish each finished prediction          [topic, K = 1, PREDICTION]
    TmsEvents._publish(pulse, measured) ──on_measured──► held until its prediction is out, then
    poll: publish prediction, measurement, error and running NRMSE     [topic, K = 4, PREDICTION]

Both messages carry the pulse's id. A pulse whose marker has no usable coil pose or intensity
(or whose prediction failed) gets predicted values 0 flagged ``NO_PREDICTION | DEGRADED``:
nothing is dropped. The running NRMSE (seed 001, eq. 7, on the model's min-max scaled
responses) counts pulses measured without ``NO_SAMPLES``, ``OUTAGE`` or ``PREACTIVATED`` and
predicted without ``NO_PREDICTION``; it is −1 until the first such pulse.

The model runs in a worker thread (ONNX Runtime and numpy release the GIL), so the daemon's
loop never waits for it; ``poll`` asks to be called again every ``POLL_S`` while a prediction
is in flight.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rtdecode.errors import ConfigError, RtdecodeError
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.sinks.protocol import EventEncoder
from rtdecode.tms.coil import CoilPose3D
from rtdecode.tms.events import Pulse
from rtdecode.tms.m2m_config import M2mServeConfig
from rtdecode.tms.m2m_model import M2mModel
from rtdecode.tms.measure import MepResult
from rtdecode.tms.plugin import TmsEvents
from rtdecode.types import Chunk, Flags

if TYPE_CHECKING:
    from rtdecode.service.plugins import PluginContext

logger = logging.getLogger(__name__)

__all__ = ["M2mPredictor", "RunningNrmse", "pulse_stimulus"]

#: How often ``poll`` wants to run while a prediction is in flight, s.
POLL_S = 0.002
_BAD_MEASURE = int(EventFlags.NO_SAMPLES | EventFlags.OUTAGE | EventFlags.PREACTIVATED)
_NO_PRED = int(EventFlags.NO_PREDICTION | Flags.DEGRADED)


def pulse_stimulus(pulse: Pulse, rmt_mso: float | None) -> tuple[CoilPose3D, float] | None:
    """The coil pose (m) and intensity (%MSO) of a pulse, or None when the marker lacks them.

    %RMT intensities are converted with the marker's own ``intensity_mso`` field when it has
    one, else with ``rmt_mso``.
    """
    c = pulse.coil
    if c is None or c.normal is None or c.direction is None:
        return None
    if pulse.unit == "%MSO":
        mso = pulse.intensity
    elif pulse.unit == "%RMT":
        try:
            raw = json.loads(pulse.label).get("intensity_mso")
        except (ValueError, AttributeError):
            raw = None
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw)
        mso = float(raw) if ok else (pulse.intensity * rmt_mso / 100.0 if rmt_mso else math.nan)
    else:
        return None
    if not 0.0 < mso <= 100.0:
        return None
    try:
        return CoilPose3D.make(np.asarray(c.position_mm) / 1e3, np.asarray(c.normal),
                               np.asarray(c.direction)), float(mso)
    except ConfigError:
        return None


class RunningNrmse:
    """Eq. 7 accumulated pulse by pulse, overall and per muscle, on min-max scaled responses."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo = np.asarray(lo, np.float64)
        self.span = np.maximum(np.asarray(hi, np.float64) - self.lo, 1e-12)
        self.err2 = np.zeros(len(self.lo))
        self.ref2 = np.zeros(len(self.lo))
        self.n = 0

    def add(self, measured_uv: np.ndarray, predicted_uv: np.ndarray) -> None:
        """Count one pulse."""
        m = (np.asarray(measured_uv, np.float64) - self.lo) / self.span
        p = (np.asarray(predicted_uv, np.float64) - self.lo) / self.span
        self.err2 += (m - p) ** 2
        self.ref2 += m**2
        self.n += 1

    @property
    def value(self) -> float:
        """The NRMSE so far (−1 before the first pulse)."""
        den = float(self.ref2.sum())
        return math.sqrt(float(self.err2.sum()) / den) if self.n and den > 0 else -1.0

    def per_muscle(self) -> list[float | None]:
        """Per-muscle NRMSE so far (None where undefined)."""
        return [math.sqrt(e / r) if r > 0 else None for e, r in zip(self.err2, self.ref2, strict=True)]


@dataclass
class _Job:
    pulse: Pulse
    stimulus: tuple[CoilPose3D, float] | None
    predicted: np.ndarray | None = None
    flags: int = 0
    t_published: float = math.nan
    measured: tuple[Pulse, MepResult] | None = None


class M2mPredictor:
    """Daemon plug-in: an M2M-Net prediction for every pulse of a :class:`TmsEvents` plug-in.

    Parameters
    ----------
    cfg : M2mServeConfig
        The ``[tms.m2m]`` table.
    events : TmsEvents
        The plug-in whose pulses and measures it follows (opened before this one).
    """

    name = "m2m"

    def __init__(self, cfg: M2mServeConfig, events: TmsEvents) -> None:
        self.cfg = cfg
        self.events = events
        self.jobs: dict[int, _Job] = {}
        self.counts = {"pulses": 0, "predicted": 0, "no_prediction": 0, "paired": 0, "scored": 0,
                       "before_pulse": 0, "before_window": 0, "after_measurement": 0}
        self.delays_ms: deque[float] = deque(maxlen=1000)
        self._todo: queue.Queue[_Job | None] = queue.Queue()
        self._done: queue.Queue[_Job] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ctx: PluginContext | None = None
        self._seq = 0

    def open(self, ctx: PluginContext) -> None:
        """Load the model, match its muscles to the measured channels, start the worker."""
        cfg = self.cfg
        self.model = M2mModel(cfg.model, threads=cfg.threads)
        self.model.volumes.cache_size = cfg.cache_size
        self.head = cfg.head or self.model.meta.primary
        if self.head not in self.model.meta.heads:
            raise ConfigError(f"tms.m2m.head {self.head!r}: the model has heads {self.model.meta.heads}",
                              f"use one of {self.model.meta.heads}")
        labels = self.events.labels
        missing = [m for m in self.model.muscles if m not in labels]
        if missing:
            raise ConfigError(f"tms.m2m: the model's muscles {missing} are not among the measured "
                              f"channels {labels}", "measure them (tms.channels) or use a model "
                              "trained on these channels")
        self._idx = np.array([labels.index(m) for m in self.model.muscles])
        k = len(self._idx)
        self._enc_pred = EventEncoder(cfg.topic, k, 1)
        self._enc_pair = EventEncoder(cfg.topic, k, 4)
        sc = self.model.meta.scaling
        self.scores = RunningNrmse(np.asarray(sc.output_lo), np.asarray(sc.output_hi))
        self._window = self.events.cfg.measure.post_ms
        self._warm_up()
        self._ctx = ctx
        self._thread = threading.Thread(target=self._work, name="m2m-predict", daemon=True)
        self._thread.start()
        self.events.listeners.append(self)
        logger.info("m2m: %s (%s head, %s input) predicts %d muscles per pulse on topic %r",
                    cfg.model, self.head, self.model.meta.volume.kind, k, cfg.topic)

    def _warm_up(self) -> None:
        """One prediction at the middle of the trained poses, so the first pulse is not a cold start."""
        from rtdecode.tms.m2m_verify import sample_poses

        poses, mso = sample_poses(self.model, 1, 0)
        self.model.predict(poses[0], float(mso[0]))
        self.model.volumes.hits = self.model.volumes.misses = 0

    # -- loop thread -------------------------------------------------------
    def on_chunk(self, chunk: Chunk) -> None:
        """Input chunks are not needed: pulses come through :meth:`on_pulse`."""

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Frames the daemon sent: the measures come through :meth:`on_measured` instead."""

    def on_pulse(self, pulse: Pulse) -> None:
        """Queue the pulse's prediction (or mark it unpredictable); never blocks."""
        job = _Job(pulse, pulse_stimulus(pulse, self.cfg.rmt_mso))
        self.jobs[id(pulse)] = job
        self.counts["pulses"] += 1
        if job.stimulus is None:
            self._fail(job)
            self._done.put(job)
        else:
            self._todo.put(job)

    def on_measured(self, pulse: Pulse, result: MepResult) -> None:
        """Hold the measure until the pulse's prediction is out (``poll`` publishes the pair)."""
        job = self.jobs.get(id(pulse))
        if job is None:  # a pulse from before this plug-in opened
            job = self.jobs[id(pulse)] = _Job(pulse, None)
            self._fail(job)
            self._done.put(job)
        job.measured = (pulse, result)

    def poll(self, now: float) -> float:
        """Publish finished predictions, then the pairs whose prediction is out."""
        while True:
            try:
                job = self._done.get_nowait()
            except queue.Empty:
                break
            self._publish_prediction(job)
        for key, job in list(self.jobs.items()):
            if math.isfinite(job.t_published) and job.measured is not None:
                self._publish_pair(job)
                del self.jobs[key]
        in_flight = any(not math.isfinite(j.t_published) for j in self.jobs.values())
        return now + POLL_S if in_flight else math.inf

    # -- worker thread ------------------------------------------------------
    def _work(self) -> None:
        while (job := self._todo.get()) is not None:
            assert job.stimulus is not None
            try:
                pred = self.model.predict(*job.stimulus)
                job.predicted, job.flags = pred.mep_uv[self.head], pred.flags
            except (RtdecodeError, ValueError, RuntimeError) as exc:  # ORT raises RuntimeError kinds
                logger.error("m2m: prediction of pulse %d failed: %s", job.pulse.pulse_id, exc)
                self._fail(job)
            self._done.put(job)

    def _fail(self, job: _Job) -> None:
        job.predicted = np.zeros(len(self._idx), np.float32)
        job.flags = _NO_PRED

    # -- publishing (loop thread) --------------------------------------------
    def _send(self, frame: Any) -> None:
        assert self._ctx is not None
        self._ctx.publish(frame)
        self._seq += 1

    def _publish_prediction(self, job: _Job) -> None:
        assert self._ctx is not None and job.predicted is not None
        p, now = job.pulse, self._ctx.clock()
        flags = job.flags | int(EventFlags.PREDICTION)
        k = len(self._idx)
        self._send(self._enc_pred.encode(
            self._seq, flags, p.t, now, pulse_id=p.pulse_id, t_pulse=p.t,
            values=job.predicted.reshape(k, 1), channel_flags=np.full(k, flags, np.uint32),
            window_ms=self._window, intensity=p.intensity, intensity_unit=p.unit))
        job.t_published = now
        c = self.counts
        if job.flags & EventFlags.NO_PREDICTION:
            c["no_prediction"] += 1
            return
        c["predicted"] += 1
        delay = now - p.t
        self.delays_ms.append(1e3 * delay)
        c["before_pulse"] += delay < 0
        c["before_window"] += delay < self._window[0] / 1e3
        c["after_measurement"] += job.measured is not None

    def _publish_pair(self, job: _Job) -> None:
        assert self._ctx is not None and job.measured is not None and job.predicted is not None
        p, result = job.measured
        measured = result.values[self._idx, 0].astype(np.float64)
        ch = result.channel_flags[self._idx].astype(np.int64)
        usable = not (job.flags & EventFlags.NO_PREDICTION or (ch & _BAD_MEASURE).any()
                      or result.flags & _BAD_MEASURE)
        if usable:
            self.scores.add(measured, job.predicted)
            self.counts["scored"] += 1
        flags = int(job.flags | int(EventFlags.PREDICTION))
        values = np.column_stack([job.predicted, measured, measured - job.predicted,
                                  np.full(len(measured), self.scores.value)])
        ch_flags = (ch | flags).astype(np.uint32)
        self._send(self._enc_pair.encode(
            self._seq, int(np.bitwise_or.reduce(ch_flags)) | flags | result.flags, result.t_last,
            self._ctx.clock(), pulse_id=p.pulse_id, t_pulse=p.t, values=values, channel_flags=ch_flags,
            window_ms=self._window, intensity=p.intensity, intensity_unit=p.unit))
        self.counts["paired"] += 1

    def status(self) -> dict[str, Any]:
        """Counters, prediction delays and the running NRMSE (under ``m2m``)."""
        d = np.asarray(self.delays_ms)
        delay = ({"p50": round(float(np.median(d)), 3), "max": round(float(d.max()), 3),
                  "min": round(float(d.min()), 3)} if d.size else None)
        opened = hasattr(self, "scores")
        per = dict(zip(self.model.muscles, self.scores.per_muscle(), strict=True)) if opened else {}
        return {"topic": self.cfg.topic, "model": str(self.cfg.model), "head": getattr(self, "head", None),
                "channels": self.model.muscles if opened else [],
                **self.counts, "in_flight": sum(not math.isfinite(j.t_published) for j in self.jobs.values()),
                "delay_after_pulse_ms": delay,
                "running_nrmse": round(self.scores.value, 4) if opened else None,
                "nrmse_per_muscle": {m: (None if v is None else round(v, 4)) for m, v in per.items()},
                "volume_cache": {"hits": self.model.volumes.hits, "misses": self.model.volumes.misses}
                if opened else None}

    def close(self) -> None:
        """Stop the worker, publish every prediction and pair still held (idempotent).

        Run after :meth:`TmsEvents.close`, which publishes the measures of pending pulses.
        """
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join(timeout=10.0)
            self._thread = None
        if self._ctx is None:
            return
        while True:  # predictions the worker never reached
            try:
                job = self._todo.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._fail(job)
                self._done.put(job)
        self.poll(self._ctx.clock())
        for job in self.jobs.values():
            if job.measured is None:
                logger.warning("m2m: pulse %d was never measured; its prediction was published alone",
                               job.pulse.pulse_id)
        self.jobs.clear()
        if self in self.events.listeners:
            self.events.listeners.remove(self)
        self._ctx = None

