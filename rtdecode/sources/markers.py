"""A marker outlet beside a sample outlet: one string marker per event, on the samples' clock.

Producers (the replay player, the TMS simulator) push their samples with explicit timestamps
``t0 + i / rate``; a marker at sample ``i`` gets exactly that timestamp, so a consumer can
align it with the sample on the LSL clock. :class:`MarkerSchedule` says when to push it: with
the samples of its chunk, or ``lead_s`` earlier (a stimulator that reports before the
amplifier's samples arrive) or later (a negative lead: a marker after its samples).
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.errors import ConfigError, SourceError
from rtdecode.lsl import pylsl

logger = logging.getLogger(__name__)

__all__ = ["MarkerOutlet", "MarkerSchedule"]


class MarkerSchedule:
    """Markers at sample positions, handed out as the producer pushes samples.

    Parameters
    ----------
    sample_index : int array (m,)
        Sample of each marker (may lie beyond the last sample: its samples never come).
    labels : list of str
        One label per marker.
    lead_samples : int
        Push each marker this many samples before its own sample is pushed (negative:
        after it).
    period : int, optional
        Samples per loop of a looping producer: the markers repeat every ``period`` samples.
    """

    def __init__(self, sample_index: np.ndarray, labels: list[str], lead_samples: int = 0,
                 period: int | None = None) -> None:
        idx = np.asarray(sample_index, dtype=np.int64).reshape(-1)
        if idx.size != len(labels):
            raise ConfigError(f"{idx.size} marker positions for {len(labels)} labels",
                              "give one label per marker")
        order = np.argsort(idx, kind="stable")
        self.index = idx[order]
        self.labels = [labels[i] for i in order]
        self.lead = int(lead_samples)
        self.period = period
        self._next = 0
        self._offset = 0

    def due(self, pushed: int) -> list[tuple[int, str]]:
        """Markers to push once samples ``0 .. pushed - 1`` are out: ``(sample index, label)``."""
        out = []
        while self.index.size:
            if self._next == self.index.size:
                if self.period is None:
                    break
                self._next, self._offset = 0, self._offset + self.period
            i = int(self.index[self._next]) + self._offset
            if i - self.lead >= pushed:
                break
            out.append((i, self.labels[self._next]))
            self._next += 1
        return out

    def rest(self) -> list[tuple[int, str]]:
        """The markers not handed out yet (of a producer that does not loop)."""
        out = [(int(i), lab) for i, lab in zip(self.index[self._next:], self.labels[self._next:],
                                                strict=True)]
        self._next = self.index.size
        return out


class MarkerOutlet:
    """A one-channel string LSL outlet of type ``Markers`` (irregular rate).

    Parameters
    ----------
    name : str
        Stream name.
    source_id : str, optional
        Default ``"rtdecode-markers:<name>"``.

    Notes
    -----
    The constructor does no I/O; :meth:`open` creates the outlet, :meth:`close` is idempotent.
    """

    def __init__(self, name: str, source_id: str | None = None) -> None:
        self.name = name
        self.source_id = source_id if source_id is not None else f"rtdecode-markers:{name}"
        self.outlet: pylsl.StreamOutlet | None = None
        self.n_pushed = 0

    def open(self) -> MarkerOutlet:
        """Create the outlet (idempotent)."""
        if self.outlet is None:
            info = pylsl.StreamInfo(self.name, "Markers", 1, pylsl.IRREGULAR_RATE,
                                    pylsl.cf_string, self.source_id)
            try:
                self.outlet = pylsl.StreamOutlet(info)
            except Exception as err:  # liblsl raises RuntimeError / OSError variants
                raise SourceError(f"cannot create LSL marker outlet {self.name!r}: {err}",
                                  "check the LSL configuration (LSLAPICFG)") from err
            logger.info("LSL marker outlet %r open", self.name)
        return self

    def push(self, label: str, t: float) -> None:
        """Push one marker with LSL timestamp ``t`` (s)."""
        if self.outlet is None:
            raise SourceError(f"marker outlet {self.name!r} is not open", "call open() first")
        self.outlet.push_sample([label], t)
        self.n_pushed += 1

    def close(self) -> None:
        """Destroy the outlet (idempotent)."""
        outlet, self.outlet = self.outlet, None
        if outlet is not None:
            del outlet
            logger.info("LSL marker outlet %r closed after %d markers", self.name, self.n_pushed)
