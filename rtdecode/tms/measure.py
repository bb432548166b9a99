"""MEP measurement of one pulse's epoch, per channel, the same live and offline.

For a pulse at sample ``k0`` the epoch holds samples ``k0 - n_before .. k0 + n_after``
(``n_before`` covers the settling time, the pre-pulse window and the blanking window;
``n_after`` the end of the post-pulse window). Each epoch is measured on its own::

    raw epoch ──► minus its first sample ──► artefact blanked (straight line)
              ──► chain (causal, from zero state) ──► × µV per unit
              ──► pre window: mean, RMS        → pre_rms_uv, PREACTIVATED
              ──► post window: max − min       → p2p_uv, NO_RESPONSE
                               Σ|x − pre mean| → area_uv_ms
              ──► onset search: first |x − pre mean| > max(onset_sd·RMS, response_uv/2)
                                               → latency_ms

Subtracting the first sample makes the chain start from the epoch's own level, so a
high-pass has no step transient; every measure is relative to the pre-pulse mean, so the
offset does not change it. Because the measure is a function of the epoch's samples alone,
live (samples from LSL in any chunking, marker before or after them) and offline
(:func:`measure_recording`) give the same values.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from rtdecode.dsp import build_chain
from rtdecode.errors import ConfigError, RtdecodeError
from rtdecode.sinks.event_payload import MEASURES, EventFlags
from rtdecode.tms.config import MeasureConfig
from rtdecode.tms.ring import SampleRing
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

__all__ = ["MepMeasurer", "MepResult", "measure_recording"]

_P2P, _LATENCY, _AREA, _PRE_RMS = range(len(MEASURES))


@dataclass
class MepResult:
    """Measures of one pulse.

    Attributes
    ----------
    values : float32 (M, 4)
        Per channel: ``p2p_uv``, ``latency_ms``, ``area_uv_ms``, ``pre_rms_uv`` (all finite).
    channel_flags : uint32 (M,)
        ``EventFlags`` / ``Flags`` bits per channel.
    flags : int
        Message flags: the OR of the channels' plus the pulse-wide bits.
    t_last : float
        LSL time of the newest sample the measures depend on, s.
    """

    values: np.ndarray
    channel_flags: np.ndarray
    flags: int
    t_last: float


def _samples(ms: float, rate_hz: float) -> int:
    """Sample offset of a time after the pulse, ms (nearest sample)."""
    return int(math.floor(ms * rate_hz / 1e3 + 0.5))


def _window(w: tuple[float, float], rate_hz: float) -> tuple[int, int]:
    """Half-open sample offsets [a, b) of the samples whose time lies in [w0, w1] ms."""
    return (int(math.ceil(w[0] * rate_hz / 1e3 - 1e-9)),
            int(math.floor(w[1] * rate_hz / 1e3 + 1e-9)) + 1)


class MepMeasurer:
    """Measures epochs of one stream's channels.

    Parameters
    ----------
    cfg : MeasureConfig
        Chain and windows.
    rate_hz : float
        Sample rate of the stream, Hz.
    n_channels : int
        Measured channels.
    uv_per_unit : float
        Microvolts per unit of the stream.

    Raises
    ------
    ConfigError
        The chain does not fit the stream, changes its rate or channel count, or a window
        is shorter than one sample.
    """

    def __init__(self, cfg: MeasureConfig, rate_hz: float, n_channels: int,
                 uv_per_unit: float) -> None:
        self.cfg = cfg
        self.rate_hz = float(rate_hz)
        self.n_channels = int(n_channels)
        self.uv_per_unit = float(uv_per_unit)
        try:
            self.chain = build_chain(cfg.chain, self.rate_hz, self.n_channels)
        except RtdecodeError as exc:
            raise ConfigError(f"tms.measure.chain: {exc.what}", exc.fix) from None
        if self.chain.n_out != self.n_channels or self.chain.rate_out_hz != self.rate_hz:
            raise ConfigError("tms.measure.chain changes the rate or the channel count",
                              "use only filters (butter) in tms.measure.chain")
        start = min(cfg.pre_ms[0], cfg.blank_ms[0]) - cfg.settle_ms
        #: Samples of the epoch before / after the pulse sample.
        self.n_before = -_samples(start, self.rate_hz)
        self.n_after = _window((0.0, cfg.post_ms[1]), self.rate_hz)[1] - 1
        k = self.n_before
        self._pre = tuple(k + o for o in _window(cfg.pre_ms, self.rate_hz))
        self._post = tuple(k + o for o in _window(cfg.post_ms, self.rate_hz))
        self._blank = tuple(k + o for o in _window(cfg.blank_ms, self.rate_hz))
        self._onset0 = k + _window((cfg.onset_from_ms, cfg.post_ms[1]), self.rate_hz)[0]
        for name, (a, b) in (("pre_ms", self._pre), ("post_ms", self._post)):
            if b - a < 2:
                raise ConfigError(f"tms.measure.{name} holds {b - a} sample(s) at "
                                  f"{self.rate_hz:g} Hz", f"widen tms.measure.{name}")
        self._t = np.zeros(self.length)  # the chain's time argument (unused by filters)

    @property
    def length(self) -> int:
        """Samples per epoch (``n_before + 1 + n_after``)."""
        return self.n_before + 1 + self.n_after

    def measure(self, epoch: np.ndarray, t_last: float, in_flags: int = 0) -> MepResult:
        """Measure one epoch.

        Parameters
        ----------
        epoch : float (length, M)
            Raw samples, stream units; the pulse is at row ``n_before``.
        t_last : float
            LSL time of the epoch's last sample, s.
        in_flags : int
            Pulse-wide flag bits found while extracting the epoch (``OUTAGE``, ``GAP``, ...).

        Returns
        -------
        MepResult
        """
        x = np.asarray(epoch, dtype=np.float64)
        flags = int(in_flags)
        bad = ~np.isfinite(x)
        if bad.any():  # a repaired sample must not decide a measure: hold the last finite value
            flags |= Flags.BAD_INPUT
            x = _hold_finite(x, bad)
        x = x - x[0]
        a, b = self._blank
        _bridge(x, a, b)
        y, _ = self.chain.process(x, self._t)
        self.chain.reset()
        y = np.asarray(y, dtype=np.float64) * self.uv_per_unit
        values = np.zeros((self.n_channels, len(MEASURES)), dtype=np.float32)
        ch_flags = np.zeros(self.n_channels, dtype=np.uint32)
        pre = y[self._pre[0]:self._pre[1]]
        mean = pre.mean(axis=0)
        rms = pre.std(axis=0)
        post = y[self._post[0]:self._post[1]] - mean
        p2p = post.max(axis=0) - post.min(axis=0)
        values[:, _P2P] = p2p
        values[:, _AREA] = np.abs(post).sum(axis=0) * (1e3 / self.rate_hz)
        values[:, _PRE_RMS] = rms
        ch_flags[rms > self.cfg.preactivation_uv] |= np.uint32(EventFlags.PREACTIVATED)
        values[:, _LATENCY], found = self._onsets(y, mean, rms)
        ch_flags[(p2p < self.cfg.response_uv) | ~found] |= np.uint32(EventFlags.NO_RESPONSE)
        values[ch_flags & EventFlags.NO_RESPONSE != 0, _LATENCY] = 0.0
        ch_flags |= np.uint32(flags)
        return MepResult(values, ch_flags, flags | int(np.bitwise_or.reduce(ch_flags)), t_last)

    def _onsets(self, y: np.ndarray, mean: np.ndarray, rms: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Onset latency per channel, ms, and whether one was found."""
        seg = np.abs(y[self._onset0:self._post[1]] - mean)
        thr = np.maximum(self.cfg.onset_sd * rms, self.cfg.response_uv / 2.0)
        above = seg > thr
        found = above.any(axis=0)
        first = np.argmax(above, axis=0)
        latency = (self._onset0 + first - self.n_before) * (1e3 / self.rate_hz)
        return np.where(found, latency, 0.0), found

    def empty(self, flags: int, t_last: float) -> MepResult:
        """The result of a pulse whose samples never came: zeros, every channel flagged."""
        bits = int(flags) | EventFlags.NO_SAMPLES
        return MepResult(np.zeros((self.n_channels, len(MEASURES)), np.float32),
                         np.full(self.n_channels, bits, np.uint32), bits, t_last)


def _hold_finite(x: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Forward-fill non-finite samples per channel (0 before the first finite one)."""
    n = x.shape[0]
    rows = np.where(bad, -1, np.arange(n)[:, None])
    np.maximum.accumulate(rows, axis=0, out=rows)
    held = x[np.clip(rows, 0, None), np.arange(x.shape[1])]
    return np.where(rows < 0, 0.0, held)


def _bridge(x: np.ndarray, a: int, b: int) -> None:
    """Replace rows [a, b) by the straight line from row a - 1 to row b, in place."""
    a = max(a, 1)
    b = min(b, x.shape[0] - 1)
    if b <= a:
        return
    w = (np.arange(a, b) - (a - 1)) / float(b - (a - 1))
    x[a:b] = x[a - 1] + w[:, None] * (x[b] - x[a - 1])


def extract_epoch(ring: SampleRing, measurer: MepMeasurer, t_pulse: float, gap_factor: float,
                  out_x: np.ndarray, out_t: np.ndarray) -> tuple[str, int]:
    """Find a pulse's epoch in the ring and copy it out.

    Parameters
    ----------
    ring : SampleRing
        Recent samples of the measured channels.
    measurer : MepMeasurer
        Gives the epoch's extent.
    t_pulse : float
        LSL time of the pulse, s.
    gap_factor : float
        A time step above ``gap_factor / rate_hz`` inside the epoch is an outage.
    out_x : float32 (length, M)
    out_t : float64 (length,)

    Returns
    -------
    state : {"ready", "wait", "gone"}
        ``ready``: copied; ``wait``: the last sample has not arrived yet; ``gone``: the
        first sample is no longer held (or was never received).
    flags : int
        Pulse-wide flags of a ready epoch: the ring's chunk flags, plus ``OUTAGE`` (and
        ``GAP``) when samples are missing inside it or the pulse fell into a gap.
    """
    period = 1.0 / measurer.rate_hz
    k0 = ring.nearest(t_pulse)
    if k0 >= ring.n_written or k0 + measurer.n_after >= ring.n_written:
        return "wait", 0
    start = k0 - measurer.n_before
    if start < ring.first:
        return "gone", 0
    bits = ring.read(start, out_x, out_t)
    flags = int(bits & (Flags.GAP | Flags.BAD_INPUT))
    steps = np.diff(out_t)
    if (flags & Flags.GAP or abs(out_t[measurer.n_before] - t_pulse) > period
            or steps.max() > gap_factor * period or steps.min() <= 0.0):
        flags |= int(EventFlags.OUTAGE | Flags.GAP)
    return "ready", flags


def measure_recording(x: np.ndarray, t: np.ndarray, pulse_times: np.ndarray,
                      measurer: MepMeasurer, gap_factor: float = 3.0) -> list[MepResult]:
    """The offline measurement: every pulse of a recording, with the live code path.

    Parameters
    ----------
    x : float (n, M)
        Samples of the measured channels, stream units.
    t : float64 (n,)
        Their times, s (any origin, the same as ``pulse_times``).
    pulse_times : float64 (p,)
        Pulse times, s.
    measurer : MepMeasurer
    gap_factor : float
        As in :func:`extract_epoch`.

    Returns
    -------
    list of MepResult
        One per pulse, in the order given; pulses too close to either end of the
        recording are flagged ``NO_SAMPLES``.
    """
    ring = SampleRing(max(1, x.shape[0]), measurer.n_channels)
    ring.write(np.asarray(x, dtype=np.float32), np.asarray(t, dtype=np.float64))
    ex = np.empty((measurer.length, measurer.n_channels), np.float32)
    et = np.empty(measurer.length)
    out = []
    for tp in np.asarray(pulse_times, dtype=np.float64):
        state, flags = extract_epoch(ring, measurer, float(tp), gap_factor, ex, et)
        out.append(measurer.measure(ex, float(et[-1]), flags) if state == "ready"
                   else measurer.empty(0, float(tp)))
    return out
