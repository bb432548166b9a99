"""What a topic publishes when it cannot publish a fresh estimate: the one safe-value policy.

Three situations replace an estimate, and all use :class:`SafeValue`:

============================  =========================  ===================================
situation                     mode                       flags
============================  =========================  ===================================
a decoder fails / is late     ``decoders[].on_failure``  ``DEGRADED`` (+ ``HOLD`` for hold)
the input is silent (STALE)   ``service.safe_value``     ``STALE`` (+ ``HOLD`` for hold)
fusion while the input is      ``service.safe_value``     ``STALE`` (+ ``HOLD`` for hold)
stale
============================  =========================  ===================================

Modes: ``hold`` the last good estimate, ``zero``, or ``vector`` (a configured vector, checked
at start-up by :func:`safe_vectors`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtdecode.config import Config
from rtdecode.errors import ConfigError
from rtdecode.types import Flags

__all__ = ["SafeValue", "safe_vectors"]


class SafeValue:
    """A topic's last good estimate and its replacement values.

    Parameters
    ----------
    n : int
        Values per estimate.
    vector : float32 (n,), optional
        The ``vector`` mode's value (zeros when not configured).
    """

    def __init__(self, n: int, vector: np.ndarray | None = None) -> None:
        self.last_good = np.zeros(n, np.float32)
        self._zeros = np.zeros(n, np.float32)
        self.vector = self._zeros
        self.set_vector(vector)

    @property
    def n(self) -> int:
        """Values per estimate."""
        return int(self.last_good.size)

    def set_vector(self, vector: np.ndarray | None) -> None:
        """The ``vector`` mode's value float (n,) (None: zeros)."""
        self.vector = self._zeros if vector is None else np.asarray(vector, np.float32)

    def remember(self, row: np.ndarray) -> None:
        """Keep ``row`` float (n,) as the last good estimate (the ``hold`` value)."""
        self.last_good[:] = row

    def value(self, mode: str) -> tuple[np.ndarray, int]:
        """(values float32 (n,), extra ``Flags``) of ``mode``: hold → (last good, HOLD)."""
        if mode == "hold":
            return self.last_good, int(Flags.HOLD)
        return (self.vector if mode == "vector" else self._zeros), 0

    def rows(self, m: int, mode: str, flags: int) -> tuple[np.ndarray, np.ndarray]:
        """``m`` rows of the safe value: (y float32 (m, n), flags uint32 (m,) = flags | extra)."""
        v, extra = self.value(mode)
        return np.broadcast_to(v, (m, v.size)).copy(), np.full(m, flags | extra, np.uint32)


def safe_vectors(cfg: Config, outputs: Sequence[Sequence[str]],
                 fused: int | None = None) -> dict[str, np.ndarray | None]:
    """The ``vector`` mode's value per topic (None unless ``service.safe_value = "vector"``).

    Parameters
    ----------
    cfg : Config
    outputs : list of list of str
        Each decoder's output names, in ``cfg.decoders`` order.
    fused : int, optional
        Values of the fused topic (when fusion is configured).

    Raises
    ------
    ConfigError
        When a vector is missing or has the wrong length (naming the field and the fix).
    """
    svc = cfg.service
    out: dict[str, np.ndarray | None] = {}
    for dcfg, names in zip(cfg.decoders, outputs, strict=True):
        out[dcfg.out_topic] = None
        if svc.safe_value != "vector":
            continue
        vec = dcfg.safe_vector if dcfg.safe_vector is not None else svc.safe_vector
        where = (f"decoders[{dcfg.name}].safe_vector" if dcfg.safe_vector is not None
                 else "service.safe_vector")
        k = len(names)
        if vec is None:
            raise ConfigError(f"service.safe_value = 'vector' but neither service.safe_vector nor "
                              f"decoders[{dcfg.name}].safe_vector is set",
                              f"set service.safe_vector to {k} values ({', '.join(names)})")
        if len(vec) != k:
            raise ConfigError(f"{where} has {len(vec)} values; decoder {dcfg.name!r} has {k} "
                              f"outputs ({', '.join(names)})",
                              f"give {k} values, or set decoders[{dcfg.name}].safe_vector")
        out[dcfg.out_topic] = np.asarray(vec, np.float32)
    if fused is not None and cfg.fusion is not None:
        out[cfg.fusion.topic] = None
        if svc.safe_value == "vector":
            vec = svc.safe_vector
            if vec is None or len(vec) != fused:
                raise ConfigError(f"service.safe_vector has {len(vec) if vec else 0} values; the "
                                  f"fused topic {cfg.fusion.topic!r} has {fused}",
                                  f"give {fused} values in service.safe_vector "
                                  "(decoders with other output counts: decoders[...].safe_vector)")
            out[cfg.fusion.topic] = np.asarray(vec, np.float32)
    return out
