"""Import pylsl with a machine-scope liblsl configuration unless the user chose one.

liblsl reads ``LSLAPICFG`` once, when the library first needs its configuration.
Every rtdecode module imports pylsl through this module, so the project's own
loopback-only config (``rtdecode/data/lsl_api.cfg``) applies to the demo, the
tests and the benchmarks. A user on a lab network sets ``LSLAPICFG`` to their own
file (or an empty string to use liblsl's defaults) before starting rtdecode.
"""

from __future__ import annotations

import configparser
import logging
import os
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

#: Path of the machine-scope config shipped in the package.
DEFAULT_LSL_CONFIG = Path(__file__).parent / "data" / "lsl_api.cfg"

if "LSLAPICFG" not in os.environ:
    os.environ["LSLAPICFG"] = str(DEFAULT_LSL_CONFIG)

import pylsl  # noqa: E402  (must come after LSLAPICFG is set)

__all__ = ["pylsl", "DEFAULT_LSL_CONFIG", "channel_labels", "lsl_config_in_use", "streams_seen",
           "NUMERIC_DTYPES", "inlet_reserve_ms", "inlet_pool_mb", "warn_large_pool"]

#: numpy dtype of each numeric LSL channel format (strings have none).
NUMERIC_DTYPES = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64, pylsl.cf_int32: np.int32,
                  pylsl.cf_int16: np.int16, pylsl.cf_int8: np.int8, pylsl.cf_int64: np.int64}

#: liblsl's own default for ``[tuning] InletBufferReserveMs`` (liblsl 1.16 - 1.18), ms.
LIBLSL_RESERVE_MS = 5000.0
#: An inlet whose liblsl sample pool would exceed this gets a warning naming the setting, MB.
POOL_WARN_MB = 100.0
#: Bytes liblsl adds to each sample of its pool (its header), about.
_SAMPLE_HEADER_BYTES = 48
_warned_pool: set[str] = set()


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


def inlet_reserve_ms(config: str | None = None) -> float:
    """``[tuning] InletBufferReserveMs`` of a liblsl config file, ms (default: the one in use).

    liblsl's own default (5,000 ms) when the file is unset, unreadable or does not set it.
    """
    path = lsl_config_in_use() if config is None else config
    if not path:
        return LIBLSL_RESERVE_MS
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
        return float(parser.get("tuning", "InletBufferReserveMs", fallback=LIBLSL_RESERVE_MS))
    except (configparser.Error, OSError, UnicodeDecodeError, ValueError):
        return LIBLSL_RESERVE_MS


def inlet_pool_mb(rate_hz: float, channels: int, channel_format: int, reserve_ms: float) -> float | None:
    """Memory liblsl writes for one inlet's sample pool when it opens, MB (10^6 B).

    None for irregular-rate and string streams (their pool is a fixed 128 samples).
    """
    dtype = NUMERIC_DTYPES.get(channel_format)
    if dtype is None or rate_hz <= 0:
        return None
    return rate_hz * reserve_ms / 1e3 * (_SAMPLE_HEADER_BYTES + np.dtype(dtype).itemsize * channels) / 1e6


def warn_large_pool(info: pylsl.StreamInfo) -> None:
    """Warn once per stream name when liblsl's sample pool for its inlet exceeds POOL_WARN_MB."""
    reserve = inlet_reserve_ms()
    mb = inlet_pool_mb(info.nominal_srate(), info.channel_count(), info.channel_format(), reserve)
    if mb is None or mb <= POOL_WARN_MB or info.name() in _warned_pool:
        return
    _warned_pool.add(info.name())
    logger.warning("liblsl keeps %g ms of samples for each inlet: about %.0f MB for stream %r "
                   "(%d ch @ %g Hz), written when it opens; set [tuning] InletBufferReserveMs = 500 "
                   "in the liblsl config (LSLAPICFG=%s; docs/configuration.md)", reserve, mb,
                   info.name(), info.channel_count(), info.nominal_srate(),
                   lsl_config_in_use() or "unset: liblsl defaults")
