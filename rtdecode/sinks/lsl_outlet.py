"""Each output topic also as an LSL stream (plug-in ``lsl_outlet``), for LabRecorder & co.

One outlet per decoder topic, named ``prefix + topic``, type ``Predictions``, one float32
channel per model output plus (``flags_channel``) the message's flag word; each estimate is
pushed with the LSL time of the newest input sample it depends on (``t_source``) as its
timestamp, so an XDF recorded by LabRecorder holds the input and the predictions on one
clock, aligned sample for sample. A fused topic gets its outlet at its first message.
Status messages and other kinds are not streamed (they are in the ZeroMQ output and the
session file).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from rtdecode.errors import SinkError
from rtdecode.lsl import pylsl
from rtdecode.record.config import LslOutletConfig
from rtdecode.sinks.peek import peek
from rtdecode.sinks.protocol import KIND_ESTIMATE

logger = logging.getLogger(__name__)


class _Outlet:
    """One topic's outlet and its reused sample buffer."""

    def __init__(self, name: str, topic: str, outputs: list[str], rate_hz: float, flags: bool,
                 source_id: str) -> None:
        n = len(outputs) + int(flags)
        info = pylsl.StreamInfo(name, "Predictions", n, rate_hz, pylsl.cf_float32, source_id)
        chans = info.desc().append_child("channels")
        for o in outputs + (["flags"] if flags else []):
            c = chans.append_child("channel")
            c.append_child_value("label", o)
            c.append_child_value("type", "flags" if o == "flags" and flags else "prediction")
        info.desc().append_child("rtdecode").append_child_value("topic", topic)
        try:
            self.outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=60)
        except Exception as exc:  # liblsl RuntimeError variants
            raise SinkError(f"cannot create LSL outlet {name!r}: {exc}",
                            "check the LSL configuration (LSLAPICFG)") from exc
        self.k = len(outputs)
        self.flags = flags
        self.buf = np.zeros(n, np.float32)
        self.pushed = 0


class LslPredictionOutlets:
    """Plug-in: push every estimate of every topic into that topic's LSL outlet.

    Parameters
    ----------
    cfg : LslOutletConfig
    """

    name = "lsl_outlet"

    def __init__(self, cfg: LslOutletConfig) -> None:
        self.cfg = cfg
        self.outlets: dict[str, _Outlet] = {}
        self._source = "rtdecode"
        self.skipped = 0

    def open(self, ctx: Any) -> None:
        """Create one outlet per decoder topic (known at start-up)."""
        self._source = f"rtdecode:{ctx.stream.source_id or ctx.stream.name}"
        for d in ctx.config.decoders:
            meta = ctx.models.get(d.name)
            if meta is not None:
                self._add(d.out_topic, [o.name for o in meta.outputs], float(meta.model_rate_hz))

    def _add(self, topic: str, outputs: list[str], rate_hz: float) -> _Outlet:
        name = self.cfg.prefix + topic
        o = self.outlets[topic] = _Outlet(name, topic, outputs, rate_hz, self.cfg.flags_channel,
                                          f"{self._source}:{topic}")
        logger.info("LSL outlet %r: %d outputs%s at %g Hz", name, len(outputs),
                    " + flags" if self.cfg.flags_channel else "", rate_hz)
        return o

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Push an estimate into its topic's outlet, timestamped with its ``t_source``."""
        h = peek(frame)
        if h is None or h.kind != KIND_ESTIMATE:
            return
        o = self.outlets.get(h.topic)
        if o is None:  # the fused topic (or one added later): its outlet now, once
            o = self._add(h.topic, [f"y{i}" for i in range(h.count)], 0.0)
        if h.count != o.k:
            self.skipped += 1
            return
        o.buf[: o.k] = np.frombuffer(frame, "<f4", count=h.count, offset=h.payload_start)
        if o.flags:
            o.buf[o.k] = h.flags
        o.outlet.push_sample(o.buf, h.t_source)
        o.pushed += 1

    def on_chunk(self, chunk: Any) -> None:
        """Input chunks are not streamed again."""

    def poll(self, now: float) -> float:
        """Nothing is due on a schedule."""
        return math.inf

    def status(self) -> dict:
        """Per topic: samples pushed and whether a consumer is connected."""
        return {"topics": {t: {"pushed": o.pushed, "consumers": bool(o.outlet.have_consumers())}
                           for t, o in self.outlets.items()}, "skipped": self.skipped}

    def close(self) -> None:
        """Destroy the outlets (idempotent)."""
        self.outlets.clear()


def make_outlets(section: LslOutletConfig, cfg: Any) -> list[LslPredictionOutlets]:
    """Plug-in factory of the ``[lsl_outlet]`` section (``rtdecode.service.plugins.FACTORIES``)."""
    return [LslPredictionOutlets(section)] if section.enabled else []
