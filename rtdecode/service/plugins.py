"""Plug-ins: components that ride along the daemon's loop (TMS pulse events, the session recorder,
LSL outlets of the predictions).

A plug-in sees every input chunk as the decoders get it (:meth:`Plugin.on_chunk`), every frame
the daemon sends (:meth:`Plugin.on_sent`), is polled once per loop iteration — also while the
input is silent — and tells the loop when it next needs a call, so the loop's blocking wait
never oversleeps it (:meth:`Plugin.poll`). Everything runs on the loop thread: a plug-in must
not block (disk, network: hand them to a thread of its own behind a bounded queue).

A config section turns a plug-in on: :data:`FACTORIES` maps the section's name to the
function that builds the plug-in from it (imported only when the section is present, so an
optional dependency is only needed by those who use it). See docs/architecture.md.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rtdecode.config import Config
from rtdecode.runtime.metadata import ModelMetadata
from rtdecode.types import Chunk

logger = logging.getLogger(__name__)

__all__ = ["FACTORIES", "Plugin", "PluginContext", "StreamFacts", "build_plugins"]


@dataclass(frozen=True)
class StreamFacts:
    """The input stream the daemon opened."""

    name: str
    source_id: str
    rate_hz: float
    n_channels: int
    channel_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PluginContext:
    """What a plug-in gets when the daemon opens it (after the stream and the decoders).

    ``publish(frame)`` sends one complete frame on the daemon's PUB socket (loop thread only);
    ``clock()`` is the LSL local clock, s; ``models`` maps each decoder name to its model's
    metadata.
    """

    config: Config
    stream: StreamFacts
    models: dict[str, ModelMetadata]
    publish: Callable[[bytes | memoryview], None]
    clock: Callable[[], float]


class Plugin(Protocol):
    """What the daemon calls on a plug-in (all on the loop thread)."""

    name: str  #: key of its entry in the status message

    def open(self, ctx: PluginContext) -> None:
        """Start (after the input stream is resolved and the decoders are open)."""

    def on_chunk(self, chunk: Chunk) -> None:
        """Every input chunk served to the decoders (checked; ``chunk.flags`` has GAP / BAD_INPUT).

        ``chunk.samples`` is only valid during the call (copy what you keep).
        """

    def on_sent(self, frame: bytes | memoryview) -> None:
        """Every frame the daemon sent (estimates, status, events); valid only during the call."""

    def poll(self, now: float) -> float:
        """Do what is due; return the LSL-clock time of the next call it needs (inf: none), s."""

    def status(self) -> dict[str, Any]:
        """Its part of the status message."""

    def close(self) -> None:
        """Stop (idempotent)."""


#: config section → "module:function" that builds the plug-in(s) from (section, config): one
#: plug-in or a list of them
FACTORIES: dict[str, str] = {
    "record": "rtdecode.record.recorder:make_recorder",
    "lsl_outlet": "rtdecode.sinks.lsl_outlet:make_outlets",
    "tms": "rtdecode.tms.plugin:build_plugin",
}


def build_plugins(cfg: Config) -> list[Plugin]:
    """The plug-ins the config turns on, in :data:`FACTORIES` order (not opened yet)."""
    out: list[Plugin] = []
    for section, target in FACTORIES.items():
        sub = getattr(cfg, section, None)
        if sub is None:
            continue
        module, func = target.split(":")
        made = getattr(importlib.import_module(module), func)(sub, cfg)
        for p in made if isinstance(made, list) else [made]:
            out.append(p)
            logger.info("plug-in %s on (config section [%s])", p.name, section)
    return out
