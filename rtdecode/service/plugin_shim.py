"""Interim daemon plug-in host (until the lead's ``rtdecode.service.plugins`` lands in main).

Components that ride along the daemon's loop — the session recorder
(:mod:`rtdecode.record`) and the LSL outlets of predictions
(:mod:`rtdecode.sinks.lsl_outlet`) — implement the plug-in shape of the helper brief::

    open(ctx) → on_chunk(chunk) … on_sent(frame) … → status() → close()

:class:`PluginHost` owns the configured plug-ins and shields the loop from them: a plug-in
that raises is logged once, counted and switched off; the loop carries on. This module is
the thin adapter the daemon calls; it goes away when the real plug-in API is in main.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtdecode.lsl import channel_labels, pylsl
from rtdecode.types import Chunk

logger = logging.getLogger(__name__)


@dataclass
class StreamFacts:
    """What the daemon knows about its input stream once it is resolved."""

    name: str
    type: str
    rate_hz: float
    n_channels: int
    channel_names: list[str]
    source_id: str


@dataclass
class PluginContext:
    """What a plug-in gets at :meth:`Plugin.open`.

    Attributes
    ----------
    config : Config
        The daemon's validated configuration.
    stream : StreamFacts
        The input stream.
    models : dict of str to dict
        Per decoder name: ``topic``, ``path``, ``outputs`` and ``metadata`` (the model file's
        rtdecode metadata as a dict).
    publish : callable
        ``publish(frame: bytes)`` on the daemon's PUB socket (loop thread only).
    clock : callable
        The LSL local clock, s.
    """

    config: Any
    stream: StreamFacts
    models: dict[str, dict[str, Any]]
    publish: Callable[[bytes], None]
    clock: Callable[[], float]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_daemon(cls, daemon: Any) -> PluginContext:
        """The context of a started :class:`~rtdecode.service.daemon.Daemon` (stream resolved)."""
        info = daemon.inlet.info
        stream = StreamFacts(info.name(), info.type(), daemon.inlet.rate_hz, daemon.inlet.n_channels,
                             channel_labels(info), info.source_id())
        models = {d.name: {"topic": d.topic, "path": d.cfg.model, "outputs": d.names,
                           "metadata": d.model.meta.to_json() if d.model.meta else "{}"}
                  for d in daemon.pipeline.decoders}
        return cls(daemon.cfg, stream, models, daemon.publisher.send, pylsl.local_clock)


class Plugin(Protocol):
    """A component that rides along the daemon's loop (see the module docstring)."""

    name: str

    def open(self, ctx: PluginContext) -> None: ...

    def on_chunk(self, chunk: Chunk, flags: int = 0) -> None: ...

    def on_sent(self, frame: bytes | memoryview) -> None: ...

    def status(self) -> dict: ...

    def close(self) -> None: ...


class PluginHost:
    """The configured plug-ins, called from the daemon's loop with faults contained.

    Parameters
    ----------
    plugins : list of Plugin
        In call order.
    """

    def __init__(self, plugins: list[Plugin]) -> None:
        self.plugins = plugins
        self.active: list[Plugin] = []
        self.faults: dict[str, str] = {}

    @classmethod
    def from_config(cls, cfg: Any) -> PluginHost:
        """The plug-ins the config asks for (none: an empty host that costs nothing)."""
        plugins: list[Plugin] = []
        if getattr(cfg, "record", None) is not None and cfg.record.enabled:
            from rtdecode.record.recorder import Recorder

            plugins.append(Recorder(cfg.record))
        if getattr(cfg, "lsl_outlet", None) is not None and cfg.lsl_outlet.enabled:
            from rtdecode.sinks.lsl_outlet import LslPredictionOutlets

            plugins.append(LslPredictionOutlets(cfg.lsl_outlet))
        return cls(plugins)

    def open(self, ctx: PluginContext) -> None:
        """Open every plug-in (an error here stops start-up: the config asked for it)."""
        for p in self.plugins:
            p.open(ctx)
            self.active.append(p)

    def _fault(self, p: Plugin, exc: Exception) -> None:
        self.faults[p.name] = f"{type(exc).__name__}: {exc}"
        self.active = [q for q in self.active if q is not p]
        logger.error("plug-in %s failed and is switched off (%s); the daemon carries on", p.name,
                     self.faults[p.name])
        try:
            p.close()
        except Exception as close_exc:  # noqa: BLE001 - already reporting the first fault
            logger.debug("closing failed plug-in %s: %s", p.name, close_exc)

    def on_chunk(self, chunk: Chunk, flags: int) -> None:
        """Every input chunk as served to the decoders, with its input flags."""
        for p in self.active:
            try:
                p.on_chunk(chunk, flags)
            except Exception as exc:  # noqa: BLE001 - a plug-in must never stop the loop
                self._fault(p, exc)

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Every frame the daemon published, after it was sent."""
        for p in self.active:
            try:
                p.on_sent(frame)
            except Exception as exc:  # noqa: BLE001
                self._fault(p, exc)

    def status(self) -> dict:
        """Each plug-in's status under its name (a switched-off one: its fault)."""
        out: dict[str, Any] = {}
        for p in self.plugins:
            if p.name in self.faults:
                out[p.name] = {"failed": self.faults[p.name]}
            else:
                try:
                    out[p.name] = p.status()
                except Exception as exc:  # noqa: BLE001
                    out[p.name] = {"failed": f"{type(exc).__name__}: {exc}"}
        return out

    def close(self) -> None:
        """Close every plug-in (idempotent)."""
        for p in self.plugins:
            try:
                p.close()
            except Exception as exc:  # noqa: BLE001 - close the others
                logger.error("closing plug-in %s: %s", p.name, exc)
        self.active = []


class TeePublisher:
    """A :class:`~rtdecode.sinks.zmq_pub.Publisher` whose ``send`` also tells the plug-ins.

    Every other attribute is the wrapped publisher's.
    """

    def __init__(self, publisher: Any, host: PluginHost) -> None:
        self._pub = publisher
        self._host = host

    def send(self, frame: bytes | memoryview) -> Any:
        """Send, then hand the frame to the plug-ins (only once they are open)."""
        r = self._pub.send(frame)
        if self._host.active:
            self._host.on_sent(frame)
        return r

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pub, name)
