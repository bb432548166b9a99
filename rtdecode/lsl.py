"""Import pylsl with a machine-scope liblsl configuration unless the user chose one.

liblsl reads ``LSLAPICFG`` once, when the library first needs its configuration.
Every rtdecode module imports pylsl through this module, so the project's own
loopback-only config (``rtdecode/data/lsl_api.cfg``) applies to the demo, the
tests and the benchmarks. A user on a lab network sets ``LSLAPICFG`` to their own
file (or an empty string to use liblsl's defaults) before starting rtdecode.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Path of the machine-scope config shipped in the package.
DEFAULT_LSL_CONFIG = Path(__file__).parent / "data" / "lsl_api.cfg"

if "LSLAPICFG" not in os.environ:
    os.environ["LSLAPICFG"] = str(DEFAULT_LSL_CONFIG)

import pylsl  # noqa: E402  (must come after LSLAPICFG is set)

__all__ = ["pylsl", "DEFAULT_LSL_CONFIG", "channel_labels", "lsl_config_in_use", "streams_seen"]


def lsl_config_in_use() -> str:
    """Return the liblsl config path in effect (``''`` means liblsl defaults)."""
    return os.environ.get("LSLAPICFG", "")


def channel_labels(info: pylsl.StreamInfo) -> list[str]:
    """Channel labels from a full ``StreamInfo``'s ``desc/channels`` (``ch0 …`` when absent)."""
    ch = info.desc().child("channels").child("channel")
    names = []
    while not ch.empty():
        names.append(ch.child_value("label"))
        ch = ch.next_sibling()
    n = info.channel_count()
    return names if len(names) == n else [f"ch{i}" for i in range(n)]


def streams_seen(wait_s: float) -> list[pylsl.StreamInfo]:
    """Every LSL stream that answered within ``wait_s`` seconds (a listing, not a stream search).

    A continuous resolver listens for the whole wait and the call returns when it ends. liblsl's
    one-shot ``resolve_streams`` was measured (liblsl 1.18, machine scope, 2026-11-30) to miss one
    of two outlets in a 0.5 s wave, and to take 5.5 s instead of 0.5 s on about half the calls when
    no outlet answers, which made ``doctor`` and start-up errors slow to report an absent rig.
    """
    resolver = pylsl.ContinuousResolver()
    time.sleep(max(0.0, wait_s))
    return list(resolver.results())
