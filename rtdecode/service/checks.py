"""Plausibility checks on the way in and on the way out of the decoders.

:class:`InputCheck` repairs non-finite samples (hold / zero) and clamps samples beyond their
channel's plausible magnitude (from the models' recorded training ranges, or
``preprocessing.max_abs``); :class:`OutputCheck` replaces non-finite model outputs and clamps
outputs outside the model's training range. Both flag what they changed (``BAD_INPUT``;
``CLAMPED | DEGRADED``), count it for the status message and log once per episode.
See :mod:`rtdecode.runtime.bounds` and docs/reliability.md.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.runtime.bounds import InputLimits, OutputLimits
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

_CLAMPED = np.uint32(Flags.CLAMPED | Flags.DEGRADED)
_NONFINITE = np.uint32(Flags.CLAMPED | Flags.HOLD | Flags.DEGRADED)


class InputCheck:
    """Non-finite repair and magnitude clamp of raw input chunks.

    Parameters
    ----------
    n_channels : int
    nonfinite : {"hold", "zero"}
        Replacement of a NaN / Inf sample: the channel's last finite value, or 0.
    limits : InputLimits or None
        Largest plausible magnitude per channel (None: the finite check only).
    """

    def __init__(self, n_channels: int, nonfinite: str, limits: InputLimits | None) -> None:
        self.nonfinite = nonfinite
        self.limits = limits
        self._last_finite = np.zeros(n_channels, dtype=np.float32)
        self.bad_samples = 0  #: samples (rows) with a non-finite value
        self.out_of_range_samples = 0  #: samples (rows) clamped to the limits
        self.out_of_range_episodes = 0
        self._clamping = False

    @property
    def limits(self) -> InputLimits | None:
        """Largest plausible magnitude per channel (None: the finite check only)."""
        return self._limits

    @limits.setter
    def limits(self, limits: InputLimits | None) -> None:
        self._limits = limits
        # the fast path's bound per channel: every |x| at most this needs neither repair nor clamping
        self._fast_bound = (limits.limit if limits is not None
                            else np.float32(np.finfo(np.float32).max))

    def reset(self) -> None:
        """Forget the last finite values (after an outage with state reset)."""
        self._last_finite[:] = 0

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Check one chunk float32 (n, C); returns (the clean chunk, ``Flags`` bits)."""
        if x.shape[0] and (np.abs(x) <= self._fast_bound).all():  # NaN compares False
            self._last_finite[:] = x[-1]
            if self._clamping:
                self._clamp(x, self._limits.limit)  # type: ignore[union-attr]  # ends the episode
            return x, 0
        flags = 0
        bad = ~np.isfinite(x)
        if bad.any():
            flags |= Flags.BAD_INPUT
            self.bad_samples += int(bad.any(axis=1).sum())
            x = self._fill(x, bad)
        if x.shape[0]:
            self._last_finite[:] = x[-1]
        if self._limits is not None:
            x, over = self._clamp(x, self._limits.limit)
            if over:
                flags |= Flags.BAD_INPUT
        return x, int(flags)

    def _fill(self, x: np.ndarray, bad: np.ndarray) -> np.ndarray:
        if self.nonfinite == "zero":
            return np.where(bad, np.float32(0), x)
        n = x.shape[0]  # hold: forward-fill each channel from its last finite value
        rows = np.where(bad, -1, np.arange(n)[:, None])
        np.maximum.accumulate(rows, axis=0, out=rows)
        filled = x[np.clip(rows, 0, None), np.arange(x.shape[1])]
        return np.where(rows < 0, self._last_finite[None, :], filled).astype(np.float32)

    def _clamp(self, x: np.ndarray, lim: np.ndarray) -> tuple[np.ndarray, bool]:
        over = np.abs(x) > lim
        if not over.any():
            if self._clamping:
                self._clamping = False
                logger.warning("input back within its plausible range (%d samples clamped so far)",
                               self.out_of_range_samples)
            return x, False
        rows = over.any(axis=1)
        self.out_of_range_samples += int(rows.sum())
        if not self._clamping:
            self._clamping = True
            self.out_of_range_episodes += 1
            chans = np.flatnonzero(over.any(axis=0))
            logger.error("input beyond its plausible magnitude on channel(s) %s (largest |x| %.3g, "
                         "limit %.3g): clamped and flagged BAD_INPUT (episode %d; logged once)",
                         chans[:8].tolist(), float(np.abs(x[:, chans]).max()), float(lim[chans].min()),
                         self.out_of_range_episodes)
        return np.clip(x, -lim, lim), True


class OutputCheck:
    """One decoder's output checks: finite values, within the model's training range.

    Parameters
    ----------
    name : str
        Decoder name (log messages).
    limits : OutputLimits or None
        Plausible range per output (None: the finite check only).
    """

    def __init__(self, name: str, limits: OutputLimits | None) -> None:
        self.name = name
        self.limits = limits
        self.nonfinite_rows = 0
        self.clamped_rows = 0
        self.clamp_episodes = 0
        self._clamping = False

    def apply(self, y: np.ndarray, flags: np.ndarray, last_good: np.ndarray) -> tuple[np.ndarray, int]:
        """Check model outputs float32 (m, K); flags uint32 (m,) are updated in place.

        Non-finite rows take the previous finite row (or ``last_good``) and are flagged
        ``CLAMPED | HOLD | DEGRADED``; values outside the limits are clamped to them and their
        rows flagged ``CLAMPED | DEGRADED``. Returns (y, index of the last row that needed no
        change, or -1).
        """
        lim = self.limits
        if (((y >= lim.lo) & (y <= lim.hi)).all() if lim is not None  # NaN compares False
                else np.isfinite(y).all()):
            if self._clamping and y.shape[0]:
                self._episode(False, y.shape[0])
            return y, y.shape[0] - 1
        if not np.isfinite(y).all():
            y = self._hold_nonfinite(y, flags, last_good)
        if self.limits is not None:
            y = np.array(y, dtype=np.float32, copy=True) if not y.flags.writeable else y
            rows = self.limits.clamp(y)
            self._episode(rows is not None, y.shape[0])
            if rows is not None:
                self.clamped_rows += int(rows.sum())
                flags[rows] |= _CLAMPED
        ok = np.flatnonzero((flags & _CLAMPED) == 0)
        return y, int(ok[-1]) if ok.size else -1

    def _hold_nonfinite(self, y: np.ndarray, flags: np.ndarray, last_good: np.ndarray) -> np.ndarray:
        finite = np.isfinite(y).all(axis=1)
        if self.nonfinite_rows == 0:
            logger.error("decoder %s produced non-finite outputs; publishing held values", self.name)
        self.nonfinite_rows += int((~finite).sum())
        y = y.copy()
        for i in np.flatnonzero(~finite):  # rare path
            y[i] = y[i - 1] if i > 0 and finite[i - 1] else last_good
        flags[~finite] |= _NONFINITE
        return y

    def _episode(self, clamped: bool, rows: int) -> None:
        if clamped and not self._clamping:
            self._clamping = True
            self.clamp_episodes += 1
            logger.error("decoder %s: output outside its training range; clamped to the bound and "
                         "flagged CLAMPED|DEGRADED (episode %d; logged once)", self.name,
                         self.clamp_episodes)
        elif not clamped and rows and self._clamping:
            self._clamping = False
            logger.warning("decoder %s: output back within its training range (%d rows clamped so "
                           "far)", self.name, self.clamped_rows)

    def status(self) -> dict:
        """Counters for the status message."""
        return {"bounds": "model" if self.limits is not None else "finite only",
                "clamped_rows": self.clamped_rows, "clamp_episodes": self.clamp_episodes,
                "nonfinite_rows": self.nonfinite_rows}
