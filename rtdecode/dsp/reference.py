"""Re-referencing across channels: the common average reference (CAR).

Broadband intracortical recordings share noise on every electrode of an array (the reference
wire, line pick-up, movement and stimulation artefacts); subtracting the mean of the array's
channels at each sample removes it. The stage is memoryless and linear, so it commutes with
the spike-band filter (either order gives the same output up to rounding).
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.dsp.base import MemorylessStage, check_io
from rtdecode.dsp.specs import CarSpec
from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["CarStage", "reference_groups"]


def reference_groups(spec: CarSpec, n: int) -> list[np.ndarray]:
    """The channels averaged for each group: ``groups`` (default all) less ``exclude``.

    Returns
    -------
    list of int64 arrays
        One array of channel indices per group, each with at least two channels.

    Raises
    ------
    StageError
        If an index is not below ``n`` or a group keeps fewer than two channels.
    """
    listed = [c for g in (spec.groups or []) for c in g] + list(spec.exclude)
    bad = sorted({c for c in listed if c >= n})
    if bad:
        raise StageError(
            f"car refers to channel(s) {bad[:5]} but the stage input has {n} channels "
            f"(valid indices 0..{n - 1})",
            f"use 0-based channel indices below {n} in 'groups' and 'exclude'",
        )
    groups = spec.groups if spec.groups is not None else [list(range(n))]
    excluded = set(spec.exclude)
    out = []
    for i, g in enumerate(groups):
        kept = np.array([c for c in g if c not in excluded], dtype=np.int64)
        if kept.size < 2:
            raise StageError(
                f"car group {i} keeps {kept.size} channel(s) after 'exclude'; a reference "
                "needs at least two",
                "merge the group with another, or exclude fewer channels",
            )
        out.append(kept)
    return out


class CarStage(MemorylessStage):
    """Common average reference (:class:`~rtdecode.dsp.specs.CarSpec`).

    ``y[:, c] = x[:, c] - mean(x[:, g])`` for every channel ``c`` of group ``g``; other
    channels pass through; in float64, or float32 with ``precision = "float32"``. Computed as
    two thin matrix products, ``x @ R`` (the G group means) then ``(x @ R) @ E`` (each mean
    spread over its group's channels).

    Parameters
    ----------
    spec : CarSpec
    rate_hz : float
        Input sample rate, Hz (unchanged).
    n_in : int
        Channel count.
    """

    def __init__(self, spec: CarSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "car")
        groups = reference_groups(spec, n)
        self.dtype = np.dtype(spec.precision)
        self._R = np.zeros((n, len(groups)), dtype=self.dtype)
        self._E = np.zeros((len(groups), n), dtype=self.dtype)
        for g, members in enumerate(groups):
            self._R[members, g] = 1.0 / members.size
            self._E[g, members] = 1.0
        #: one group of every channel: subtract the mean by broadcasting
        self._all = len(groups) == 1 and groups[0].size == n
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, C) → (n, C) in :attr:`dtype`, re-referenced."""
        ref = x @ self._R
        if self._all:
            return x - ref
        return x - ref @ self._E
