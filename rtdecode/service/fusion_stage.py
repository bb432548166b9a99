"""Live Kalman fusion inside the daemon: feeds every decoder output at its source time,
publishes the fused estimate (with predict-only values between measurements) at a fixed rate.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.config import FusionConfig
from rtdecode.errors import ConfigError
from rtdecode.fusion.kalman import KalmanFusion
from rtdecode.fusion.model import FusionModel
from rtdecode.service.pipeline import DecoderOutput, Pipeline
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

#: Decoder rows with these flags are reported to the fuser as unhealthy (not fused).
UNHEALTHY = int(Flags.HOLD | Flags.CLAMPED | Flags.DEGRADED | Flags.STALE)
#: Warm-up rows (receptive field not yet filled) are not fed at all.
WARMUP = int(Flags.WARMUP)


class FusionStage:
    """The daemon's fusion step.

    Parameters
    ----------
    cfg : FusionConfig
    pipeline : Pipeline
        The opened pipeline; the fused decoders are looked up in it by name.
    """

    def __init__(self, cfg: FusionConfig, pipeline: Pipeline) -> None:
        model = FusionModel.load(cfg.model)
        names = list(cfg.decoders or model.decoder_names)
        if len(names) != model.n_decoders:
            raise ConfigError(f"fusion model {cfg.model.name} fuses {model.n_decoders} decoders, "
                              f"fusion.decoders lists {len(names)}", "list one decoder per block")
        by_name = {d.name: d for d in pipeline.decoders}
        self.index: dict[str, int] = {}
        for i, (n, k) in enumerate(zip(names, model.blocks, strict=True)):
            if n not in by_name:
                raise ConfigError(f"fusion model block {i} is decoder {n!r}, which is not configured "
                                  f"(have {sorted(by_name)})",
                                  "name it in [[decoders]] or set fusion.decoders")
            if by_name[n].last_good.size != k:
                raise ConfigError(f"decoder {n!r} has {by_name[n].last_good.size} outputs, the fusion "
                                  f"model expects {k}", "fit the fusion model on these decoders")
            self.index[n] = i
        self.cfg = cfg
        self.model = model
        self.fuser = KalmanFusion(model, history=cfg.history, stale_after_s=cfg.stale_after_s,
                                  adapt_noise=cfg.adapt_noise)
        self.n_values = model.d
        self.period_s = 1.0 / cfg.rate_hz
        self._next = 0.0
        self._t_input = float("nan")
        self._last = np.zeros(self.n_values, np.float32)
        logger.info("fusion of %s → %s at %g Hz (%s)", names, cfg.topic, cfg.rate_hz, cfg.model.name)

    def feed(self, outs: list[DecoderOutput], t_newest_input: float) -> None:
        """Fuse every new decoder row at its source time."""
        self._t_input = t_newest_input
        for o in outs:
            i = self.index.get(o.name)
            if i is None:
                continue
            for r in range(o.y.shape[0]):
                f = int(o.flags[r])
                if f & WARMUP:
                    continue
                self.fuser.update(i, o.y[r], float(o.t[r]), healthy=not f & UNHEALTHY)

    def due(self, now: float) -> bool:
        """True when the next fused message is due (fixed rate on the local clock)."""
        if now < self._next:
            return False
        self._next = now + self.period_s if now - self._next > self.period_s else self._next + self.period_s
        return np.isfinite(self._t_input)

    @property
    def next_due(self) -> float:
        """Local-clock time the next fused message is due, s (the daemon waits no longer)."""
        return self._next

    def reset(self) -> None:
        """Forget the filter state (after an outage, ``service.on_reconnect = "reset"``)."""
        self.fuser.reset()

    def estimate(self, input_stale: bool, safe_value: str,
                 safe_vector: np.ndarray | None = None) -> tuple[np.ndarray, float, int]:
        """(values float32 (d,), t_source, flags) of the fused output to publish now.

        While the input is stale the value is the safe value: the last fused estimate
        (``hold``, flags STALE|HOLD), zeros or ``safe_vector`` (flags STALE).
        """
        if input_stale:
            if safe_value == "hold":
                return self._last, self._t_input, int(Flags.STALE | Flags.HOLD)
            value = safe_vector if safe_vector is not None else np.zeros_like(self._last)
            return value, self._t_input, int(Flags.STALE)
        est = self.fuser.estimate(self._t_input)
        self._last = est.x.astype(np.float32)
        return self._last, self._t_input, int(est.flags)

    def status(self) -> dict:
        """Fusion health for the status message."""
        st = self.fuser.status()
        return {"topic": self.cfg.topic, **st}
