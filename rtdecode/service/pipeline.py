"""The decoding pipeline: input checks → each decoder's own chain → its streaming model.

The same object runs live (the daemon feeds it LSL chunks) and offline
(``rtdecode predict`` feeds it a whole file), which is what makes the two equal.
Each decoder's preprocessing chain is built from its model file's metadata
(train/serve parity); the config may only *assert* the chain, never change it.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtdecode.config import DecoderConfig, PreprocessingConfig
from rtdecode.decoders.smoothing import ProbabilitySmoother, window_frames
from rtdecode.dsp import Chain, build_chain, chains_equal
from rtdecode.errors import ConfigError, ModelError, RtdecodeError
from rtdecode.runtime.streaming import StreamingModel
from rtdecode.service.telemetry import STAGE_INPUT, StageTimer
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

#: keep_warm: at most one scratch model step per this interval, s (caches stay warm for
#: about a millisecond; a 30 kHz stream pulled sample by sample must not run 30 000 extra steps/s)
WARM_INTERVAL_S = 0.5e-3


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
    """One served decoder: its chain, its model and its safe-value memory."""

    cfg: DecoderConfig
    model: StreamingModel
    chain: Chain
    last_good: np.ndarray
    smoother: ProbabilitySmoother | None = None
    failures: int = 0
    nonfinite_out: int = 0
    names: list[str] = field(default_factory=list)
    deadline_misses: int = 0
    failure_episodes: int = 0
    failing: bool = False
    warm_failed: bool = False
    warm_steps: int = 0
    last_run: float = 0.0
    pending_flags: int = 0
    _episode_calls: int = 0

    @functools.cached_property
    def no_output(self) -> DecoderOutput:
        """The (shared, read-only) output of a call that completed no model frame."""
        y = np.zeros((0, self.last_good.size), np.float32)
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
        """(y float32 (n, K), flags uint32 (n,)) published for a failed model call."""
        if self.cfg.on_failure == "zero":
            return (np.zeros((n, self.last_good.size), np.float32),
                    np.full(n, in_flags | Flags.DEGRADED, np.uint32))
        return (np.broadcast_to(self.last_good, (n, self.last_good.size)).copy(),
                np.full(n, in_flags | Flags.DEGRADED | Flags.HOLD, np.uint32))

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
        Run-time input policy (non-finite handling, range check, expected chain).
    """

    def __init__(self, decoders: list[DecoderConfig], rate_hz: float, n_channels: int,
                 prep: PreprocessingConfig | None = None) -> None:
        self.decoder_cfgs = decoders
        self.rate_hz = float(rate_hz)
        self.n_channels = int(n_channels)
        self.prep = prep or PreprocessingConfig()
        self.decoders: list[Decoder] = []
        self._last_finite = np.zeros(self.n_channels, dtype=np.float32)
        self.bad_samples = 0
        self.out_of_range_samples = 0
        self.timer: StageTimer | None = None
        self._stage_idx: list[tuple[int, int, int]] = []  # (chain, model, post) per decoder

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
            meta = model.meta
            assert meta is not None
            where = f"decoder {dcfg.name!r} ({dcfg.model})"
            if meta.channels != self.n_channels:
                raise ModelError(f"{where} was trained on {meta.channels} channels, the stream has "
                                 f"{self.n_channels}", "serve it on the stream it was trained for")
            if abs(meta.rate_hz - self.rate_hz) > 1e-3 * meta.rate_hz:
                raise ModelError(f"{where} expects {meta.rate_hz:g} Hz input, the stream runs at "
                                 f"{self.rate_hz:g} Hz", "use a model trained at the stream's rate")
            if self.prep.chain is not None and not chains_equal(self.prep.chain, meta.preprocessing):
                raise ConfigError(
                    f"preprocessing.chain differs from the chain {where} was trained with "
                    f"({meta.preprocessing})",
                    "remove preprocessing.chain, or serve a model trained with that chain",
                )
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
            self.decoders.append(Decoder(cfg=dcfg, model=model, chain=chain,
                                         last_good=np.zeros(len(meta.outputs), np.float32),
                                         smoother=smoother, names=[o.name for o in meta.outputs]))
        return self

    def attach_timer(self, timer: StageTimer | None) -> None:
        """Time the input checks and each decoder's chain / model / post stages into ``timer``.

        ``timer`` must name the stages of :func:`rtdecode.service.telemetry.daemon_stage_names`
        for these decoders; None switches timing off.
        """
        self.timer = timer
        self._stage_idx = ([] if timer is None else
                           [(timer.index(f"chain:{d.name}"), timer.index(f"model:{d.name}"),
                             timer.index(f"post:{d.name}")) for d in self.decoders])

    def close(self) -> None:
        """Release the models (idempotent)."""
        for d in self.decoders:
            d.model.close()

    def reset(self) -> None:
        """Zero every filter and model state (e.g. after a long outage)."""
        for d in self.decoders:
            d.chain.reset()
            d.model.reset()
            if d.smoother is not None:
                d.smoother.reset()
        self._last_finite[:] = 0

    # -- processing ------------------------------------------------------
    def _repair(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Replace non-finite / out-of-range samples; returns (clean x, Flags bits)."""
        flags = 0
        bad = ~np.isfinite(x)
        if bad.any():
            flags |= Flags.BAD_INPUT
            self.bad_samples += int(bad.any(axis=1).sum())
            if self.prep.nonfinite == "zero":
                x = np.where(bad, np.float32(0), x)
            else:  # hold: forward-fill each channel from its last finite value
                n = x.shape[0]
                rows = np.where(bad, -1, np.arange(n)[:, None])
                np.maximum.accumulate(rows, axis=0, out=rows)
                filled = x[np.clip(rows, 0, None), np.arange(x.shape[1])]
                x = np.where(rows < 0, self._last_finite[None, :], filled).astype(np.float32)
        if x.shape[0]:
            self._last_finite[:] = x[-1]
        if self.prep.max_abs is not None:
            lim = np.float32(self.prep.max_abs)
            over = np.abs(x) > lim
            if over.any():
                flags |= Flags.BAD_INPUT
                self.out_of_range_samples += int(over.any(axis=1).sum())
                x = np.clip(x, -lim, lim)
        return x, int(flags)

    def process(self, x: np.ndarray, t: np.ndarray, src_flags: int = 0) -> list[DecoderOutput]:
        """Run one chunk through every decoder.

        Parameters
        ----------
        x : float32 (n, C)
            New input samples (stream units).
        t : float64 (n,)
            Their times, s.
        src_flags : int
            ``Flags`` bits the source found in this chunk (``GAP``). Input flags of a chunk
            that gives a decoder no output row are carried to its next row.

        Returns
        -------
        list of DecoderOutput
            One per decoder (possibly with 0 rows). Never contains non-finite values.
        """
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ModelError(f"chunk has shape {x.shape}, expected (n, {self.n_channels})",
                             "the stream's channel count changed; restart against the right stream")
        tm = self.timer
        if tm is not None:
            ta = time.perf_counter_ns()
        x, in_flags = self._repair(x)
        in_flags |= src_flags
        if tm is not None:
            tb = time.perf_counter_ns()
            tm.add_ns(STAGE_INPUT, tb - ta)
        outs = []
        for k, d in enumerate(self.decoders):
            frames, tf = d.chain.process(x, t)
            if tm is not None:
                ta = time.perf_counter_ns()
                tm.add_ns(self._stage_idx[k][0], ta - tb)
            dflags = in_flags | d.pending_flags  # input flags not yet on an output row
            if frames.shape[0] == 0:  # between decimated frames: nothing to run or publish
                d.pending_flags = dflags
                outs.append(d.no_output)
                now = time.perf_counter()
                if (d.cfg.keep_warm and not d.failing and not d.warm_failed
                        and now - d.last_run >= WARM_INTERVAL_S):
                    d.last_run = now
                    try:
                        d.warm_steps += int(d.model.warm_step())  # False: state on the device, no step
                    except Exception as exc:  # noqa: BLE001 - never stop the loop for a warm-up
                        d.warm_failed = True  # real steps go on and report their own faults
                        logger.warning("decoder %s: keep_warm step failed (%s: %s); keep_warm is "
                                       "off for it from now on", d.name, type(exc).__name__, exc)
                if tm is not None:
                    tb = time.perf_counter_ns()
                continue
            start = d.model.frames_seen
            d.pending_flags = 0
            fault: str | None = None
            t_call = d.last_run = time.perf_counter()
            try:
                y = d.model.step(frames)
                if tm is not None:
                    tb = time.perf_counter_ns()
                    if frames.shape[0]:  # 0-frame ticks (between decimated frames) are not model steps
                        tm.add_ns(self._stage_idx[k][1], tb - ta)
            except Exception as exc:  # a failing session must not stop the loop
                d.failures += 1
                fault = f"{type(exc).__name__}: {exc}"
            else:
                took_ms = (time.perf_counter() - t_call) * 1e3
                if d.cfg.deadline_ms is not None and frames.shape[0] and took_ms > d.cfg.deadline_ms:
                    d.deadline_misses += 1
                    fault = f"model call took {took_ms:.1f} ms, deadline {d.cfg.deadline_ms:g} ms"
            if fault is not None:
                d.fail(fault)
                y, flags = d.fallback(frames.shape[0], dflags)
                outs.append(DecoderOutput(d.name, d.topic, y, tf, flags))
                if tm is not None:
                    tb = time.perf_counter_ns()
                continue
            if d.failing and frames.shape[0]:
                d.recovered()
            flags = np.full(y.shape[0], dflags, dtype=np.uint32)
            warm = d.model.meta.receptive_field - 1 - start  # type: ignore[union-attr]
            if warm > 0:
                flags[:warm] |= np.uint32(Flags.WARMUP)
            if not np.isfinite(y).all():  # rare path: find the rows
                finite = np.isfinite(y).all(axis=1)
                d.nonfinite_out += int((~finite).sum())
                if d.nonfinite_out == int((~finite).sum()):
                    logger.error("decoder %s produced non-finite outputs; publishing held values",
                                 d.name)
                y = y.copy()
                for i in np.flatnonzero(~finite):  # rare path
                    y[i] = y[i - 1] if i > 0 and finite[i - 1] else d.last_good
                flags[~finite] |= np.uint32(Flags.CLAMPED | Flags.HOLD | Flags.DEGRADED)
            if d.smoother is not None:
                y = d.smoother.step(y)
            if y.shape[0]:
                d.last_good = y[-1].astype(np.float32, copy=True)
            outs.append(DecoderOutput(d.name, d.topic, y.astype(np.float32, copy=False), tf, flags))
            if tm is not None:
                ta = tb
                tb = time.perf_counter_ns()
                if frames.shape[0]:
                    tm.add_ns(self._stage_idx[k][2], tb - ta)
        return outs

    def describe(self) -> list[dict]:
        """Per-decoder facts for the status message and logs."""
        return [{"name": d.name, "topic": d.topic, "model": Path(d.cfg.model).name,
                 "provider": d.model.provider, "outputs": d.names,
                 "rate_hz": d.chain.rate_out_hz,
                 "delay_s": d.chain.delay_s + (d.smoother.delay_frames / d.chain.rate_out_hz
                                               if d.smoother is not None else 0.0),
                 "receptive_field": d.model.meta.receptive_field if d.model.meta else None,
                 "failures": d.failures, "deadline_misses": d.deadline_misses, "warm_steps": d.warm_steps,
                 "failure_episodes": d.failure_episodes, "failing": d.failing}
                for d in self.decoders]
