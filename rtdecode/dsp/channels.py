"""Memoryless per-channel stages: scale, standardize, select, grid, clip, sqrt."""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.dsp.base import MemorylessStage, check_io
from rtdecode.dsp.specs import ClipSpec, GridSpec, ScaleSpec, SelectSpec, SqrtSpec, StandardizeSpec
from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["ClipStage", "GridStage", "ScaleStage", "SelectStage", "SqrtStage", "StandardizeStage"]


def per_channel(value: float | list[float], n: int, field: str) -> np.ndarray:
    """A scalar or per-channel list as float64 (n,).

    Raises
    ------
    StageError
        If a list does not have one value per channel.
    """
    if isinstance(value, list):
        if len(value) != n:
            raise StageError(
                f"field {field!r} has {len(value)} values but the stage input has {n} channels",
                f"give {field!r} one value per channel ({n}) or a single scalar",
            )
        return np.asarray(value, dtype=np.float64)
    return np.full(n, float(value), dtype=np.float64)


def _check_indices(indices: list[int], n: int, field: str) -> None:
    bad = [i for i in indices if i >= n]
    if bad:
        raise StageError(
            f"field {field!r} refers to input channel(s) {bad[:5]} but the stage input has "
            f"{n} channels (valid indices 0..{n - 1})",
            f"use 0-based channel indices below {n}",
        )


class ScaleStage(MemorylessStage):
    """``y = (x - offset) * gain`` per channel (:class:`~rtdecode.dsp.specs.ScaleSpec`).

    Parameters
    ----------
    spec : ScaleSpec
    rate_hz : float
        Input sample rate, Hz (unchanged).
    n_in : int
        Channel count; per-channel ``gain`` / ``offset`` lists must have this length.
    """

    def __init__(self, spec: ScaleSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "scale")
        self._gain = per_channel(spec.gain, n, "gain")
        self._offset = per_channel(spec.offset, n, "offset")
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, C) → float64 (n, C)."""
        y = x - self._offset
        y *= self._gain
        return y


class StandardizeStage(MemorylessStage):
    """``y = (x - mean) / std`` per channel (:class:`~rtdecode.dsp.specs.StandardizeSpec`).

    Parameters
    ----------
    spec : StandardizeSpec
    rate_hz : float
        Input sample rate, Hz (unchanged).
    n_in : int
        Channel count; per-channel ``mean`` / ``std`` lists must have this length.
    """

    def __init__(self, spec: StandardizeSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "standardize")
        self._mean = per_channel(spec.mean, n, "mean")
        self._inv_std = 1.0 / per_channel(spec.std, n, "std")
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, C) → float64 (n, C)."""
        y = x - self._mean
        y *= self._inv_std
        return y


class SelectStage(MemorylessStage):
    """Pick channels by 0-based index (:class:`~rtdecode.dsp.specs.SelectSpec`).

    Parameters
    ----------
    spec : SelectSpec
    rate_hz : float
        Input sample rate, Hz (unchanged).
    n_in : int
        Input channel count; every index must be below it.
    """

    def __init__(self, spec: SelectSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "select")
        _check_indices(spec.channels, n, "channels")
        self._idx = np.asarray(spec.channels, dtype=np.intp)
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = n
        self.n_out = len(spec.channels)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, n_in) → float64 (n, len(channels))."""
        return x[:, self._idx]


class GridStage(MemorylessStage):
    """Lay channels out on an electrode grid (:class:`~rtdecode.dsp.specs.GridSpec`).

    Output channel ``r * cols + c`` is grid cell (r, c); an empty cell (-1) outputs 0.

    Parameters
    ----------
    spec : GridSpec
    rate_hz : float
        Input sample rate, Hz (unchanged).
    n_in : int
        Input channel count; every non-negative entry of ``order`` must be below it.

    Attributes
    ----------
    grid_shape : (int, int)
        (rows, cols) of the grid.
    """

    def __init__(self, spec: GridSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "grid")
        _check_indices(spec.order, n, "order")
        order = np.asarray(spec.order, dtype=np.intp)
        self._dst = np.flatnonzero(order >= 0)
        self._src = order[self._dst]
        self._all = bool(self._dst.size == order.size)
        self.grid_shape: tuple[int, int] = (int(spec.shape[0]), int(spec.shape[1]))
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = n
        self.n_out = int(order.size)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, n_in) → float64 (n, rows * cols), row-major grid cells."""
        if self._all:
            return x[:, self._src]
        y = np.zeros((x.shape[0], self.n_out), dtype=np.float64)
        y[:, self._dst] = x[:, self._src]
        return y


class ClipStage(MemorylessStage):
    """``y = clip(x, min_value, max_value)`` (:class:`~rtdecode.dsp.specs.ClipSpec`)."""

    def __init__(self, spec: ClipSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "clip")
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n
        self._lo = spec.min_value
        self._hi = spec.max_value

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, C) → float64 (n, C)."""
        return np.clip(x, self._lo, self._hi)


class SqrtStage(MemorylessStage):
    """``y = sqrt(max(x, 0))`` (:class:`~rtdecode.dsp.specs.SqrtSpec`): square-rooted counts."""

    def __init__(self, spec: SqrtSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "sqrt")
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, C) → float64 (n, C)."""
        return np.sqrt(np.maximum(x, 0.0))
