"""Envelope stages: rectify, moving RMS and causal FIR smoothing.

The FIR smoothing keeps the last ``N - 1`` input samples as its state (zero at
start, i.e. the front zero-padding of the offline convolution). Each chunk is
computed as one matrix product with a banded (Toeplitz) matrix precomputed at
build time, in blocks of at most ``block`` samples, so a tick costs a single BLAS
call and no Python loop over samples or channels.
"""

from __future__ import annotations

import logging

import numpy as np

from rtdecode.dsp.base import MemorylessStage, Stage, check_io
from rtdecode.dsp.specs import RectifySpec, RmsSpec, SmoothSpec
from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["CausalFir", "RectifyStage", "RmsStage", "SmoothStage", "window_taps"]

_MAX_TAPS = 1 << 20
_MAX_TOEPLITZ_ELEMENTS = 1 << 22  # 32 MiB of float64 per FIR stage at most


def window_taps(spec: RmsSpec | SmoothSpec, rate_hz: float) -> tuple[np.ndarray, float]:
    """Causal FIR taps of a smoothing window and their delay.

    Parameters
    ----------
    spec : RmsSpec or SmoothSpec
        ``boxcar``: ``N = round(window_s * rate_hz)`` equal taps. ``gaussian``: taps
        ``exp(-k**2 / (2 (sigma_s rate_hz)**2))`` for ``k = -H..H``, ``H = round(3 sigma_s
        rate_hz)``, shifted by H samples to be causal.
    rate_hz : float
        Sample rate, Hz.

    Returns
    -------
    taps : float64 (N,)
        ``taps[j]`` weights the sample ``j`` steps in the past; they sum to 1.
    delay_s : float
        ``(N - 1) / 2 / rate_hz`` (boxcar) or ``H / rate_hz`` ≈ 3σ (gaussian), s.

    Raises
    ------
    StageError
        If the window is shorter than one sample or absurdly long.
    """
    if spec.shape == "boxcar":
        assert spec.window_s is not None
        n_taps = int(round(spec.window_s * rate_hz))
        if n_taps < 1:
            raise StageError(
                f"field 'window_s' = {spec.window_s} s is shorter than one sample at "
                f"{rate_hz:g} Hz",
                f"use window_s >= {1.0 / rate_hz:g} s, or remove the stage",
            )
        _check_taps(n_taps, "window_s")
        return np.full(n_taps, 1.0 / n_taps), (n_taps - 1) / 2.0 / rate_hz
    assert spec.sigma_s is not None
    sigma = spec.sigma_s * rate_hz  # samples
    half = int(round(3.0 * sigma))
    if half < 1:
        raise StageError(
            f"field 'sigma_s' = {spec.sigma_s} s spans less than one sample (±3σ) at "
            f"{rate_hz:g} Hz",
            f"use sigma_s >= {1.0 / (6.0 * rate_hz):.3g} s, or remove the stage",
        )
    _check_taps(2 * half + 1, "sigma_s")
    k = np.arange(-half, half + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (k / sigma) ** 2)
    taps /= taps.sum()
    return taps, half / rate_hz


def _check_taps(n_taps: int, field: str) -> None:
    if n_taps > _MAX_TAPS:
        raise StageError(
            f"field {field!r} gives a window of {n_taps} taps (more than {_MAX_TAPS})",
            "use a shorter window, or decimate before smoothing",
        )


class CausalFir:
    """Causal FIR filter over channels with its state (the last ``N - 1`` inputs).

    Parameters
    ----------
    taps : float64 (N,)
        ``y[i] = sum_j taps[j] * x[i - j]``.
    n_channels : int
        Channels filtered in parallel (axis 1).
    """

    def __init__(self, taps: np.ndarray, n_channels: int) -> None:
        taps = np.asarray(taps, dtype=np.float64)
        self.taps = taps
        n_taps = taps.size
        self._hist = n_taps - 1
        block = min(512, max(64, n_taps))
        while block > 1 and block * (self._hist + block) > _MAX_TOEPLITZ_ELEMENTS:
            block //= 2
        self.block = block
        # Row i of the band holds the reversed taps from column i: (T @ [hist; x])[i] = y[i].
        rows = np.arange(block)[:, None]
        cols = rows + np.arange(n_taps)[None, :]
        self._band = np.zeros((block, self._hist + block), dtype=np.float64)
        self._band[rows, cols] = taps[::-1]
        # A ring of rows: the history is rows [pos - (N - 1), pos), new samples are written at
        # pos, and the history is moved back to the front only when the ring is full (every
        # ~4 blocks of samples), not on every call.
        self._work = np.zeros((self._hist + 4 * block, n_channels), dtype=np.float64)
        self._pos = self._hist

    def step(self, x: np.ndarray) -> np.ndarray:
        """Filter float64 (n, C) samples, n >= 1, keeping the state; returns float64 (n, C)."""
        n = x.shape[0]
        h = self._hist
        if h == 0:
            return x * self.taps[0]
        y = np.empty_like(x)
        work = self._work
        if n <= self.block:
            p = self._pos
            if p + n > work.shape[0]:
                work[:h] = work[p - h : p]
                p = h
            work[p : p + n] = x
            np.matmul(self._band[:n, : h + n], work[p - h : p + n], out=y)
            self._pos = p + n
            return y
        buf = np.concatenate([work[self._pos - h : self._pos], x])
        for s in range(0, n, self.block):  # blocks of samples, only for long (offline) chunks
            r = min(self.block, n - s)
            np.matmul(self._band[:r, : h + r], buf[s : s + h + r], out=y[s : s + r])
        work[:h] = buf[n:]
        self._pos = h
        return y

    def reset(self) -> None:
        """Zero the history."""
        self._work.fill(0.0)
        self._pos = self._hist


class RectifyStage(MemorylessStage):
    """Full-wave rectification ``y = |x|`` (:class:`~rtdecode.dsp.specs.RectifySpec`)."""

    def __init__(self, spec: RectifySpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "rectify")
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, C) → float64 (n, C), ``|x|``."""
        return np.abs(x)


class _WindowStage(Stage):
    """Shared state and bookkeeping of the FIR window stages."""

    _name = "window"

    def __init__(self, spec: RmsSpec | SmoothSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, self._name)
        taps, delay_s = window_taps(spec, rate)
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n
        self.delay_s = delay_s
        self.memory_s = len(taps) / rate
        self._fir = CausalFir(taps, n)

    @property
    def taps(self) -> np.ndarray:
        """FIR taps, float64 (N,), ``taps[j]`` weights the sample j steps back."""
        return self._fir.taps

    def reset(self) -> None:
        """Zero the window history."""
        self._fir.reset()


class RmsStage(_WindowStage):
    """Moving RMS envelope ``y = sqrt(FIR(x**2))`` (:class:`~rtdecode.dsp.specs.RmsSpec`).

    Parameters
    ----------
    spec : RmsSpec
        Window shape and length (``window_s`` / ``sigma_s``, s).
    rate_hz : float
        Input sample rate, Hz.
    n_in : int
        Channel count.
    """

    _name = "rms"

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RMS of new samples; see :meth:`Stage.step`. Returns float64 (n, C) in input units."""
        y = self._fir.step(np.square(x))
        np.maximum(y, 0.0, out=y)  # guard against -0 / rounding before the root
        np.sqrt(y, out=y)
        return y, t


class SmoothStage(_WindowStage):
    """Causal FIR smoothing ``y = FIR(x)`` (:class:`~rtdecode.dsp.specs.SmoothSpec`).

    Parameters
    ----------
    spec : SmoothSpec
        Window shape and length (``window_s`` / ``sigma_s``, s).
    rate_hz : float
        Input sample rate, Hz.
    n_in : int
        Channel count.
    """

    _name = "smooth"

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smooth new samples; see :meth:`Stage.step`. Returns float64 (n, C)."""
        return self._fir.step(x), t
