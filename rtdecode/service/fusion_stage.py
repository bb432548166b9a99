"""Live Kalman fusion inside the daemon: feeds every decoder output at its source time; the
daemon publishes the fused estimate (with predict-only values between measurements) at a fixed
rate on the fusion's topic, and its safe value (:class:`~rtdecode.service.safe_value.SafeValue`,
holding the last fused estimate) while the input is stale.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.config import FusionConfig
from rtdecode.errors import ConfigError
from rtdecode.fusion.kalman import KalmanFusion
from rtdecode.fusion.model import FusionModel
from rtdecode.service.pipeline import DecoderOutput, Pipeline
from rtdecode.service.safe_value import SafeValue
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
            if by_name[n].safe.n != k:
                raise ConfigError(f"decoder {n!r} has {by_name[n].safe.n} outputs, the fusion "
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
        self.safe = SafeValue(self.n_values)
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

    @property
    def t_input(self) -> float:
        """LSL time of the newest input sample fed so far, s (NaN before the first)."""
        return self._t_input

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

    def estimate(self) -> tuple[np.ndarray, float, int]:
        """(values float32 (d,), t_source s, flags) of the fused estimate now; remembered as the
        safe value's last good estimate. Always finite."""
        est = self.fuser.estimate(self._t_input)
        values = est.x.astype(np.float32)
        self.safe.remember(values)
        return values, self._t_input, int(est.flags)

    def status(self) -> dict:
        """Fusion health for the status message."""
        st = self.fuser.status()
        return {"topic": self.cfg.topic, **st}
