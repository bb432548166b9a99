"""The decoding pipeline: input checks → each decoder's own chain → its streaming model.

The same object runs live (the daemon feeds it LSL chunks) and offline
(``rtdecode predict`` feeds it a whole file), which is what makes the two equal.
Each decoder's preprocessing chain is built from its model file's metadata
(train/serve parity); the config may only *assert* the chain, never change it.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtdecode.config import DecoderConfig, PreprocessingConfig
from rtdecode.decoders.smoothing import ProbabilitySmoother, window_frames
from rtdecode.dsp import Chain, build_chain, chains_equal
from rtdecode.errors import ConfigError, ModelError, RtdecodeError
from rtdecode.runtime.bounds import InputLimits, OutputLimits, probability_range
from rtdecode.runtime.metadata import ModelMetadata
from rtdecode.runtime.streaming import StreamingModel
from rtdecode.service.checks import InputCheck, OutputCheck
from rtdecode.service.safe_value import SafeValue
from rtdecode.service.telemetry import NO_TIMER, STAGE_INPUT, NullTimer, StageTimer, decoder_stages
from rtdecode.types import Chunk, Flags

logger = logging.getLogger(__name__)

#: keep_warm: at most one scratch model step per this interval, s (caches stay warm for
#: about a millisecond; a 30 kHz stream pulled sample by sample must not run 30 000 extra steps/s)
WARM_INTERVAL_S = 0.5e-3
#: ``Flags.BAD_INPUT`` as a plain int (tested on every tick; IntFlag arithmetic is slower)
BAD_INPUT = int(Flags.BAD_INPUT)
#: longest chain memory counted when flagging rows after repaired input, s
MAX_MEMORY_S = 10.0


@dataclass
class DecoderOutput:
    """What one decoder produced in one call.

    Attributes
    ----------
    y : float32 (m, K)
        Finite outputs, one row per model frame.
    t : float64 (m,)
        Time of the newest input sample each row depends on (LSL clock live), s.
    flags : uint32 (m,)
        ``Flags`` bits per row.
    """

    name: str
    topic: str
    y: np.ndarray
    t: np.ndarray
    flags: np.ndarray


@dataclass
class Decoder:
    """One served decoder: its chain, its model, its output checks and its safe-value memory.

    ``memory_frames`` is how many frames one input sample keeps affecting the output (the
    chain's memory, the model's receptive field and the smoothing window): after repaired
    input, rows are flagged ``BAD_INPUT`` until ``tainted_until`` (a frame count).
    """

    cfg: DecoderConfig
    model: StreamingModel
    chain: Chain
    safe: SafeValue
    check: OutputCheck
    memory_frames: int = 0
    smoother: ProbabilitySmoother | None = None
    failures: int = 0
    names: list[str] = field(default_factory=list)
    deadline_misses: int = 0
    failure_episodes: int = 0
    failing: bool = False
    warm_failed: bool = False
    warm_steps: int = 0  #: keep_warm steps, those of pre-wakes included
    prewarm_steps: int = 0  #: keep_warm steps run by a pre-wake (:meth:`Pipeline.prewarm`)
    last_run: float = 0.0
    since_frame: int = 0  #: input samples of the ticks since the last one that completed a frame
    warm_pending: bool = False  #: its frame is due within two ticks: warm it before the next one
    pending_flags: int = 0
    tainted_until: int = 0
    _episode_calls: int = 0

    @functools.cached_property
    def no_output(self) -> DecoderOutput:
        """The (shared, read-only) output of a call that completed no model frame."""
        y = np.zeros((0, self.safe.n), np.float32)
        out = DecoderOutput(self.name, self.topic, y, np.zeros(0), np.zeros(0, np.uint32))
        for a in (out.y, out.t, out.flags):
            a.flags.writeable = False
        return out

    def fail(self, reason: str) -> None:
        """Count one failed model call; log the first of an episode only."""
        self._episode_calls += 1
        if not self.failing:
            self.failing = True
            self.failure_episodes += 1
            logger.error("decoder %s failing: %s; publishing %s values flagged DEGRADED (episode %d; "
                         "further failures counted, not logged)", self.name, reason,
                         self.cfg.on_failure, self.failure_episodes)

    def recovered(self) -> None:
        """A model call succeeded (in time): end the failure episode, if any."""
        if self.failing:
            logger.warning("decoder %s recovered after %d failed calls", self.name,
                           self._episode_calls)
            self.failing = False
            self._episode_calls = 0

    def fallback(self, n: int, in_flags: int) -> tuple[np.ndarray, np.ndarray]:
        """(y float32 (n, K), flags uint32 (n,)) published for a failed model call:
        ``decoders[].on_failure`` of the safe value, flagged DEGRADED."""
        return self.safe.rows(n, self.cfg.on_failure, in_flags | Flags.DEGRADED)

    def taint(self, start: int, n: int, in_flags: int, flags: np.ndarray) -> None:
        """Flag rows ``start .. start+n`` that still depend on repaired input (BAD_INPUT)."""
        if in_flags & BAD_INPUT:
            self.tainted_until = start + max(n, 1) + self.memory_frames
        elif start < self.tainted_until:
            flags[:self.tainted_until - start] |= np.uint32(Flags.BAD_INPUT)

    @functools.cached_property
    def frame_samples(self) -> float:
        """Input samples per model frame (the chain's decimation; 1.0 when it keeps the rate)."""
        return self.chain.rate_in_hz / self.chain.rate_out_hz

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def topic(self) -> str:
        return self.cfg.out_topic


class Pipeline:
    """Input checks and every decoder, for one input stream.

    Parameters
    ----------
    decoders : list of DecoderConfig
    rate_hz : float
        Nominal rate of the input stream, Hz.
    n_channels : int
        Channels of the input stream.
    prep : PreprocessingConfig
        Run-time input policy (non-finite handling, plausible range, expected chain).
    counters : sequence of int
        Channels that carry a sample counter (``source.index_channel``): exempt from the
        plausible-range clamp (a counter outgrows any training range), still repaired if not finite.
    """

    def __init__(self, decoders: list[DecoderConfig], rate_hz: float, n_channels: int,
                 prep: PreprocessingConfig | None = None, counters: Sequence[int] = ()) -> None:
        self.decoder_cfgs = decoders
        self.rate_hz = float(rate_hz)
        self.n_channels = int(n_channels)
        self.counters = tuple(counters)
        if any(not 0 <= k < self.n_channels for k in self.counters):
            raise ConfigError(f"source.index_channel {self.counters} is outside the stream's "
                              f"{self.n_channels} channels", "fix source.index_channel")
        self.prep = prep or PreprocessingConfig()
        self.decoders: list[Decoder] = []
        self.input = InputCheck(self.n_channels, self.prep.nonfinite, None)
        self.timer: StageTimer | NullTimer = NO_TIMER

    @property
    def warm_due(self) -> bool:
        """A decoder's frame is due within two ticks and it has not been pre-warmed (keep_warm)."""
        return any(d.warm_pending for d in self.decoders)

    @property
    def bad_samples(self) -> int:
        """Input samples (rows) with a non-finite value so far."""
        return self.input.bad_samples

    @property
    def out_of_range_samples(self) -> int:
        """Input samples (rows) clamped to their plausible magnitude so far."""
        return self.input.out_of_range_samples

    # -- construction ----------------------------------------------------
    @staticmethod
    def load_models(decoders: list[DecoderConfig]) -> list[StreamingModel]:
        """Open every model (fails fast, before any stream is resolved)."""
        return [StreamingModel(d.model, d.providers, require_provider=d.require_provider,
                               threads=d.intra_op_threads, device_id=d.device_id,
                               trt_cache_dir=d.trt_cache_dir, fp16=d.fp16, io_binding=d.io_binding,
                               cuda_graph_frames=d.cuda_graph_frames,
                               max_frames=d.max_step_frames).open() for d in decoders]

    def open(self, models: list[StreamingModel] | None = None) -> Pipeline:
        """Open the models (unless given), check them against the stream, build chains."""
        models = models if models is not None else self.load_models(self.decoder_cfgs)
        for dcfg, model in zip(self.decoder_cfgs, models, strict=True):
            self.decoders.append(self._decoder(dcfg, model))
        self.input.limits = self._input_limits([m.meta for m in models if m.meta is not None])
        return self

    def _decoder(self, dcfg: DecoderConfig, model: StreamingModel) -> Decoder:
        meta = model.meta
        assert meta is not None
        where = f"decoder {dcfg.name!r} ({dcfg.model})"
        check_model_fits(meta, where, self.rate_hz, self.n_channels, self.prep)
        try:
            chain = build_chain(meta.preprocessing, meta.rate_hz, meta.channels)
        except RtdecodeError as exc:
            raise ModelError(f"{where}: its preprocessing chain cannot be built: {exc.what}",
                             exc.fix) from None
        if chain.n_out != meta.model_channels or abs(chain.rate_out_hz - meta.model_rate_hz) > 1e-6:
            raise ModelError(f"{where}: chain gives {chain.n_out} ch @ {chain.rate_out_hz:g} Hz, "
                             f"model takes {meta.model_channels} ch @ {meta.model_rate_hz:g} Hz",
                             "re-export the model")
        smoother = None
        if dcfg.smoothing is not None:
            if meta.task != "classification":
                raise ConfigError(f"decoders[{dcfg.name}].smoothing is set but {where} is a "
                                  f"{meta.task} model", "remove smoothing for this decoder")
            smoother = ProbabilitySmoother(len(meta.outputs),
                                           window_frames(dcfg.smoothing.window_s, meta.model_rate_hz),
                                           dcfg.smoothing.method)
        memory = (math.ceil(min(chain.memory_s, MAX_MEMORY_S) * meta.model_rate_hz)
                  + meta.receptive_field - 1 + (smoother.window - 1 if smoother else 0))
        return Decoder(cfg=dcfg, model=model, chain=chain, safe=SafeValue(len(meta.outputs)),
                       check=OutputCheck(dcfg.name, output_limits(meta, dcfg.output_margin, where)),
                       memory_frames=memory, smoother=smoother, names=[o.name for o in meta.outputs])

    def _input_limits(self, metas: list[ModelMetadata]) -> InputLimits | None:
        if self.prep.max_abs is not None:
            return InputLimits.uniform(self.prep.max_abs, self.n_channels).exempt(self.counters)
        ranges = [m.bounds.input for m in metas if m.bounds is not None]
        if self.prep.input_range_factor is None or not ranges:
            return None
        return InputLimits.from_ranges(ranges, self.prep.input_range_factor).exempt(self.counters)

    def attach_timer(self, timer: StageTimer | None) -> None:
        """Time the input checks and each decoder's chain / model / post stages into ``timer``.

        ``timer`` must name the stages of :func:`rtdecode.service.telemetry.daemon_stage_names`
        for these decoders; None switches timing off.
        """
        self.timer = timer if timer is not None else NO_TIMER

    def close(self) -> None:
        """Release the models (idempotent)."""
        for d in self.decoders:
            d.model.close()

    def reset(self) -> None:
        """Zero every filter and model state (e.g. after a long outage)."""
        for d in self.decoders:
            d.chain.reset()
            d.model.reset()
            d.tainted_until = 0
            if d.smoother is not None:
                d.smoother.reset()
        self.input.reset()

    # -- processing ------------------------------------------------------
    def check(self, chunk: Chunk) -> Chunk:
        """The input checks on a chunk: repaired / clamped samples, ``BAD_INPUT`` in its flags.

        Raises
        ------
        ModelError
            If the chunk does not have the stream's channel count.
        """
        x = chunk.samples
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ModelError(f"chunk has shape {x.shape}, expected (n, {self.n_channels})",
                             "the stream's channel count changed; restart against the right stream")
        t0 = self.timer.now()
        y, flags = self.input.apply(x)
        self.timer.lap(STAGE_INPUT, t0)
        if y is x and not flags:
            return chunk
        return Chunk(samples=y, t_lsl=chunk.t_lsl, first_index=chunk.first_index,
                     flags=chunk.flags | flags)

    def run(self, chunk: Chunk) -> list[DecoderOutput]:
        """Every decoder on a checked chunk (:meth:`check`); one output each (maybe 0 rows).

        Input flags of a chunk that gives a decoder no output row are carried to its next row.
        Never returns non-finite values, nor values outside a model's training range flagged OK.
        """
        outs = []
        tm, t = self.timer, self.timer.now()
        for k, d in enumerate(self.decoders):
            chain_i, model_i, post_i = decoder_stages(k)
            frames, tf = d.chain.process(chunk.samples, chunk.t_lsl)
            t = tm.lap(chain_i, t)
            dflags = chunk.flags | d.pending_flags  # input flags not yet on an output row
            if frames.shape[0] == 0:  # between decimated frames: nothing to run or publish
                d.pending_flags = dflags
                if dflags & BAD_INPUT:
                    d.taint(d.model.frames_seen, 0, dflags, np.zeros(0, np.uint32))
                outs.append(d.no_output)
                self._keep_warm(d, chunk.samples.shape[0])
                t = tm.now()
                continue
            d.pending_flags = d.since_frame = 0
            d.warm_pending = False
            y, flags, start = self._step(d, frames, dflags)
            t = tm.lap(model_i, t)
            outs.append(self._finish(d, y, tf, flags, start, dflags))
            t = tm.lap(post_i, t)
        return outs

    def process(self, x: np.ndarray, t: np.ndarray, src_flags: int = 0) -> list[DecoderOutput]:
        """One chunk through the input checks and every decoder (offline and tests).

        Parameters
        ----------
        x : float32 (n, C)
            New input samples (stream units).
        t : float64 (n,)
            Their times, s.
        src_flags : int
            ``Flags`` bits the source found in this chunk (``GAP``).

        Returns
        -------
        list of DecoderOutput
            As :meth:`run`.
        """
        return self.run(self.check(Chunk(samples=x, t_lsl=t, first_index=0, flags=src_flags)))

    def _keep_warm(self, d: Decoder, n: int) -> None:
        """keep_warm: a scratch model step on a tick that completed no frame, when the frame is
        due within two more ticks of ``n`` samples (rate-limited); such a tick also marks the
        decoder ``warm_pending`` (:attr:`warm_due`: the daemon warms it again just before the next
        chunk, :meth:`prewarm`).

        ``since_frame`` counts from the tick that completed the last frame, so it misses the
        samples that tick left in the chain — fewer than one tick's: with ticks of a steady
        size the step comes on one or both of the two ticks before the frame's, never later.
        """
        if not d.cfg.keep_warm:
            return
        d.since_frame += n
        if d.since_frame + 2 * n < d.frame_samples:
            return
        d.warm_pending = True
        self._warm(d)

    def prewarm(self) -> None:
        """The keep_warm step of every decoder whose frame is due within two ticks (each at most
        once per tick that set it, whatever :data:`WARM_INTERVAL_S` says).

        The daemon calls it when it wakes shortly before the next chunk is due (``service.
        prewake_ms``): a warm step right before the real one makes the real one ~3× faster
        than one a tick earlier (:meth:`StreamingModel.warm_step`).
        """
        for d in self.decoders:
            if d.warm_pending:
                d.warm_pending = False
                d.prewarm_steps += self._warm(d, interval_s=0.0)

    def _warm(self, d: Decoder, interval_s: float | None = None) -> int:
        """One keep_warm step of ``d``'s model unless it is failing or ran less than ``interval_s``
        (default :data:`WARM_INTERVAL_S`) ago; returns the steps run (0 or 1)."""
        now = time.perf_counter()
        limit = WARM_INTERVAL_S if interval_s is None else interval_s
        if d.failing or d.warm_failed or now - d.last_run < limit:
            return 0
        d.last_run = now
        try:
            ran = int(d.model.warm_step())  # False: state on the device, no step
        except Exception as exc:  # noqa: BLE001 - never stop the loop for a warm-up
            d.warm_failed = True  # real steps go on and report their own faults
            logger.warning("decoder %s: keep_warm step failed (%s: %s); keep_warm is "
                           "off for it from now on", d.name, type(exc).__name__, exc)
            return 0
        d.warm_steps += ran
        return ran

    def _step(self, d: Decoder, frames: np.ndarray, dflags: int) -> tuple[np.ndarray, np.ndarray, int]:
        """One model call on ``frames`` float32 (m, C'); never raises.

        Returns (y float32 (m, K), flags uint32 (m,), frame index of the first row); a failed or
        late call gives the decoder's fallback rows, flagged DEGRADED.
        """
        start = d.model.frames_seen
        fault: str | None = None
        t_call = d.last_run = time.perf_counter()
        try:
            y = d.model.step(frames)
        except Exception as exc:  # a failing session must not stop the loop
            d.failures += 1
            fault = f"{type(exc).__name__}: {exc}"
        else:
            took_ms = (time.perf_counter() - t_call) * 1e3
            if d.cfg.deadline_ms is not None and took_ms > d.cfg.deadline_ms:
                d.deadline_misses += 1
                fault = f"model call took {took_ms:.1f} ms, deadline {d.cfg.deadline_ms:g} ms"
        if fault is not None:
            d.fail(fault)
            y, flags = d.fallback(frames.shape[0], dflags)
            return y, flags, -1
        d.recovered()
        return y, np.full(y.shape[0], dflags, dtype=np.uint32), start

    def _finish(self, d: Decoder, y: np.ndarray, tf: np.ndarray, flags: np.ndarray,
                start: int, dflags: int) -> DecoderOutput:
        """Flags (warm-up, repaired input), output checks and smoothing of a model call's rows."""
        if start >= 0:  # a real model call (not the fallback)
            warm = d.model.meta.receptive_field - 1 - start  # type: ignore[union-attr]
            if warm > 0:
                flags[:warm] |= np.uint32(Flags.WARMUP)
            d.taint(start, y.shape[0], dflags, flags)
            y, last_ok = d.check.apply(y, flags, d.safe.last_good)
            if d.smoother is not None:
                y = d.smoother.step(y)
            if last_ok >= 0:
                d.safe.remember(y[last_ok])
        return DecoderOutput(d.name, d.topic, y.astype(np.float32, copy=False), tf, flags)

    def describe(self) -> list[dict]:
        """Per-decoder facts for the status message and logs."""
        return [{"name": d.name, "topic": d.topic, "model": Path(d.cfg.model).name,
                 "provider": d.model.provider, "outputs": d.names,
                 "rate_hz": d.chain.rate_out_hz,
                 "delay_s": d.chain.delay_s + (d.smoother.delay_frames / d.chain.rate_out_hz
                                               if d.smoother is not None else 0.0),
                 "receptive_field": d.model.meta.receptive_field if d.model.meta else None,
                 "failures": d.failures, "deadline_misses": d.deadline_misses, "warm_steps": d.warm_steps,
                 "prewarm_steps": d.prewarm_steps,
                 "failure_episodes": d.failure_episodes, "failing": d.failing, **d.check.status()}
                for d in self.decoders]


def check_model_fits(meta: ModelMetadata, where: str, rate_hz: float, n_channels: int,
                     prep: PreprocessingConfig) -> None:
    """A model must have been trained on this stream's channels and rate, with the asserted chain.

    Raises
    ------
    ModelError, ConfigError
    """
    if meta.channels != n_channels:
        raise ModelError(f"{where} was trained on {meta.channels} channels, the stream has "
                         f"{n_channels}", "serve it on the stream it was trained for")
    if abs(meta.rate_hz - rate_hz) > 1e-3 * meta.rate_hz:
        raise ModelError(f"{where} expects {meta.rate_hz:g} Hz input, the stream runs at "
                         f"{rate_hz:g} Hz", "use a model trained at the stream's rate")
    if prep.chain is not None and not chains_equal(prep.chain, meta.preprocessing):
        raise ConfigError(
            f"preprocessing.chain differs from the chain {where} was trained with "
            f"({meta.preprocessing})",
            "remove preprocessing.chain, or serve a model trained with that chain",
        )


def output_limits(meta: ModelMetadata, margin: float | None, where: str) -> OutputLimits | None:
    """The plausible output range of a model (None: finite check only, with a warning)."""
    if margin is None:
        return None
    if meta.task == "classification":
        return OutputLimits.from_range(probability_range(len(meta.outputs)), 0.0)
    if meta.bounds is None:
        logger.warning("%s carries no training ranges (bounds): its outputs get the finite check "
                       "only; re-export it with this rtdecode to record them", where)
        return None
    return OutputLimits.from_range(meta.bounds.output, margin)
