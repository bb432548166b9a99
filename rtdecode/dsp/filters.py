"""Causal Butterworth filtering with kept state (second-order sections).

The live path and the offline path run the same code: ``scipy.signal.sosfilt`` with
the filter state carried between chunks, starting from zero (the front
zero-padding of the offline filter). Never ``filtfilt``.

``scipy.signal`` is imported when a filter is designed or built, not with this module: its
import takes ~1 s, which processes that build no filter (the CLI's other commands, daemons
whose chains have no filter) need not pay; a built filter keeps what it calls per chunk.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

from rtdecode.dsp.base import Stage, check_io
from rtdecode.dsp.specs import ButterSpec
from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["SMALL_CHUNK", "WIDE_CHANNELS", "ButterStage", "SosState", "sos_group_delay_s",
           "sos_settle_s"]


#: Chunks of up to this many samples are filtered by one matrix product (see :class:`SosState`).
SMALL_CHUNK = 32
#: From this many channels on, longer chunks are filtered as blocks of ``SMALL_CHUNK`` samples
#: too: ``sosfilt`` runs along the (strided) sample axis one channel at a time and costs ~7×
#: the blocked products at 64+ channels (a 300-sample catch-up chunk of 1,024 channels: ~9 ms
#: vs ~1.2 ms, measured on a loaded 2-core machine); with fewer channels ``sosfilt`` wins for
#: long (offline) chunks.
WIDE_CHANNELS = 16


class SosState:
    """A second-order-section IIR filter over channels with its state.

    Small chunks (the live path: 1–32 samples per tick) are filtered by one matrix
    product instead of ``scipy.signal.sosfilt``, whose per-call overhead (~50 µs) is
    ~15× the arithmetic at these sizes. The filter is linear in (state, input), so for
    a chunk of n samples ``[y; z_out] = M_n @ [z_in; x]`` exactly; ``M_n`` is built
    once per n by running ``sosfilt`` itself on unit states and unit impulses, so both
    paths compute the same map (they differ by float64 rounding only, tested).

    Parameters
    ----------
    sos : float64 (n_sections, 6)
        Second-order sections as returned by ``scipy.signal.butter(..., output="sos")``.
    n_channels : int
        Number of channels filtered in parallel (axis 1).
    dtype : numpy dtype
        Arithmetic of the chunk maps and the state (float64, or float32); long chunks of
        few channels run through ``sosfilt`` in float64 and are cast back.
    """

    def __init__(self, sos: np.ndarray, n_channels: int, dtype: Any = np.float64) -> None:
        from scipy.signal import sosfilt

        self._sosfilt = sosfilt  # bound now: the first long chunk must not import scipy.signal
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.n_channels = int(n_channels)
        self.dtype = np.dtype(dtype)
        self._zi = np.zeros((self.sos.shape[0], 2, n_channels), dtype=self.dtype)
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _chunk_map(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``M_n`` (n + 2S, 2S + n) and its input buffer (2S + n, C), in :attr:`dtype`."""
        entry = self._maps.get(n)
        if entry is None:
            s = 2 * self.sos.shape[0]
            k = s + n
            zi = np.zeros((s, k))
            zi[:, :s] = np.eye(s)
            u = np.zeros((n, k))
            u[:, s:] = np.eye(n)
            y, zf = self._sosfilt(self.sos, u, axis=0, zi=zi.reshape(self.sos.shape[0], 2, k))
            entry = (np.vstack([y, zf.reshape(s, k)]).astype(self.dtype),
                     np.empty((k, self.n_channels), dtype=self.dtype))
            self._maps[n] = entry
        return entry

    def step(self, x: np.ndarray) -> np.ndarray:
        """Filter (n, C) samples in :attr:`dtype`, n >= 1, and keep the state; returns (n, C)."""
        n = x.shape[0]
        if n <= SMALL_CHUNK:
            return self._mapped(x)
        if self.n_channels < WIDE_CHANNELS:
            y, zf = self._sosfilt(self.sos, x, axis=0, zi=self._zi)
            self._zi = zf.astype(self.dtype, copy=False)
            return y.astype(self.dtype, copy=False)
        y = np.empty_like(x)
        for s in range(0, n, SMALL_CHUNK):
            y[s : s + SMALL_CHUNK] = self._mapped(x[s : s + SMALL_CHUNK])
        return y

    def _mapped(self, x: np.ndarray) -> np.ndarray:
        """:meth:`step` for n <= ``SMALL_CHUNK`` samples: one matrix product."""
        n = x.shape[0]
        m, buf = self._chunk_map(n)
        s = buf.shape[0] - n
        buf[:s] = self._zi.reshape(s, self.n_channels)
        buf[s:] = x
        out = m @ buf
        self._zi = out[n:].reshape(self._zi.shape)
        return out[:n]

    def reset(self) -> None:
        """Zero the filter state."""
        self._zi = np.zeros_like(self._zi)


def sos_group_delay_s(sos: np.ndarray, f_hz: float, rate_hz: float) -> float:
    """Group delay (s) of a cascade of second-order sections at one frequency.

    Parameters
    ----------
    sos : float64 (n_sections, 6)
        Second-order sections.
    f_hz : float
        Frequency at which the delay is evaluated, Hz.
    rate_hz : float
        Sample rate, Hz.

    Returns
    -------
    float
        Sum of the sections' group delays, s.
    """
    from scipy import signal

    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular points (a zero on the unit circle at f)
        for sec in sos:
            _, gd = signal.group_delay((sec[:3], sec[3:]), w=[f_hz], fs=rate_hz)
            if np.isfinite(gd[0]):
                total += float(gd[0])
    return total / rate_hz


def sos_settle_s(sos: np.ndarray, rate_hz: float, level: float = 1e-3) -> float:
    """Time until the impulse response of a stable cascade stays below ``level`` × its peak, s.

    The response is computed over twice the decay time of the slowest pole (radius r < 1),
    ``2 ln(level) / ln(r)`` samples (at most one minute of samples), and searched for its
    last sample above the level.
    """
    from scipy import signal

    r = max(float(np.max(np.abs(np.roots(sec[3:])), initial=0.0)) for sec in sos)
    if r >= 1.0:
        return math.inf
    n = int(min(2 * math.log(level) / math.log(r) if r > 0 else 0.0, 60 * rate_hz)) + 8 * len(sos)
    impulse = np.zeros(n)
    impulse[0] = 1.0
    h = np.abs(signal.sosfilt(sos, impulse))
    return float(np.flatnonzero(h > level * h.max())[-1] + 1) / rate_hz


class ButterStage(Stage):
    """Causal Butterworth filter (:class:`~rtdecode.dsp.specs.ButterSpec`).

    Parameters
    ----------
    spec : ButterSpec
        Filter type, order and cut-off(s), Hz.
    rate_hz : float
        Input sample rate, Hz; every cut-off must lie below ``rate_hz / 2``.
    n_in : int
        Channel count.

    Notes
    -----
    ``delay_s`` is the group delay at a reference frequency in the pass band: 0 Hz
    for low-pass and band-stop, the geometric centre ``sqrt(low * high)`` for
    band-pass, and ``sqrt(cutoff * nyquist)`` for high-pass.
    """

    def __init__(self, spec: ButterSpec, rate_hz: float, n_in: int) -> None:
        rate, n = check_io(rate_hz, n_in, "butter")
        nyq = rate / 2.0
        cut = spec.cutoff_hz
        edges = list(cut) if isinstance(cut, tuple) else [cut]
        if max(edges) >= nyq:
            raise StageError(
                f"field 'cutoff_hz' = {cut} Hz is not below the Nyquist frequency {nyq:g} Hz "
                f"of this stage's input ({rate:g} Hz)",
                f"use cutoff_hz below {nyq:g} Hz, or place the stage before any decimation",
            )
        self.spec = spec.model_copy(deep=True)
        self.rate_in_hz = self.rate_out_hz = rate
        self.n_in = self.n_out = n
        from scipy import signal

        sos = signal.butter(spec.order, cut, btype=spec.btype, fs=rate, output="sos")
        self.dtype = np.dtype(spec.precision)
        self._filter = SosState(sos, n, self.dtype)
        if spec.btype == "bandpass":
            f_ref = float(np.sqrt(edges[0] * edges[1]))
        elif spec.btype == "highpass":
            f_ref = float(np.sqrt(edges[0] * nyq))
        else:
            f_ref = 0.0
        self.delay_s = sos_group_delay_s(sos, f_ref, rate)
        self.memory_s = sos_settle_s(sos, rate)

    @property
    def sos(self) -> np.ndarray:
        """Second-order sections, float64 (n_sections, 6)."""
        return self._filter.sos

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter new samples; see :meth:`Stage.step`. Returns (n, n_in) in :attr:`dtype`, t."""
        return self._filter.step(x), t

    def reset(self) -> None:
        """Zero the filter state."""
        self._filter.reset()
