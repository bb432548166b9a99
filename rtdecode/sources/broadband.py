"""Simulated broadband intracortical data: tuned units' spikes on noisy electrodes.

The spiking comes from the simulated motor cortex (:class:`~rtdecode.sources.simulator.CortexSimulator`,
cosine-tuned Poisson units driven by a smooth random 2-D hand velocity), run at the block
rate (1 kHz by default): its spike count of unit ``c`` in block ``k`` becomes that many spikes on
channel ``c``, each at a uniformly drawn sample of the block, each drawing the unit's waveform.

Per sample ``i`` of channel ``c`` (µV)::

    x[i, c] = Σ spikes of unit c  (template: a trough of -a_c µV, an after-hyperpolarisation)
            + n[i, c]             (electrode noise, white, RMS noise_uv)
            + m[i]                (common mode on every channel: white, RMS common_uv, plus a
                                   line_hz sinusoid of amplitude line_uv)

The unit amplitudes ``a_c`` (uniform in ``amplitude_range_uv``) and waveform shapes are drawn
from the subject seed, like the tuning, so another ``seed`` of the same subject is another
session of the same array. Channels whose unit is small are below a -4.5 × RMS threshold and
carry it only in their spike-band power, as on a real array.

Cost (the simulator must stream 1,024 channels at 30 kHz in real time on one core): the electrode
noise comes from a bank of ``noise_bank_s`` of precomputed white noise, read at a random
offset and sign per block (so it never repeats as a whole); per block the work is one row
gather, a broadcast add and the spikes' templates (``np.add.at``).

Output does not depend on how it is requested: every random stream is consumed block by block,
in order (the offsets and signs, the common mode, the spikes' sample offsets, the cortex
model's own streams), so ``generate`` in any chunk sizes returns the same samples for a seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from rtdecode.errors import ConfigError
from rtdecode.io.recording import Recording
from rtdecode.sources.simulator import KINEMATICS_NAMES, KINEMATICS_UNITS, CortexSimulator

logger = logging.getLogger(__name__)

__all__ = ["BroadbandSimulator", "simulate_broadband_recording", "simulator_blocks"]

#: Spike waveform length, s.
WAVEFORM_S = 0.0016
#: Blocks of the cortex model generated per call (the rest waits in a buffer).
CORTEX_BATCH = 20


class BroadbandSimulator:
    """Streaming simulator of broadband intracortical data and the hand trajectory.

    Parameters
    ----------
    n_channels : int
        Electrodes (one tuned unit each).
    rate_hz : float
        Samples per second (30 kHz by default).
    seed : int
        Seed of the session: trajectory, spike times, noise.
    subject_seed : int, optional
        Seed of the subject: the units' tuning, amplitudes and waveforms (default ``seed``).
    noise_uv, common_uv, line_uv : float
        Electrode noise RMS, common-mode noise RMS and line-noise amplitude, µV.
    line_hz : float
        Line frequency, Hz.
    amplitude_range_uv : (float, float)
        Range of the units' trough amplitudes, µV.
    block_s : float
        Block length, s: the cortex model's step (rates and kinematics change once per block).
        ``block_s × rate_hz`` must be a whole number of samples.
    noise_bank_s : float
        Length of the precomputed electrode-noise bank, s.
    **cortex : Any
        Other :class:`CortexSimulator` parameters (``v_std_cm_s``, ``baseline_range_hz`` …).

    Attributes
    ----------
    block : int
        Samples per block; kinematics row ``k`` belongs to sample ``(k + 1) · block − 1``.
    amplitudes_uv : float64 (n_channels,)
        Trough amplitude of each channel's unit, µV.
    templates : float32 (n_channels, T)
        The units' waveforms, µV.
    cortex : CortexSimulator
        The spiking model, at ``1 / block_s`` Hz.
    n_generated : int
        Samples returned since construction / :meth:`reset`.
    """

    stream_type = "Broadband"
    channel_unit = "microvolts"

    def __init__(self, n_channels: int = 96, rate_hz: float = 30000.0, seed: int = 0, *,
                 subject_seed: int | None = None, noise_uv: float = 8.0, common_uv: float = 3.0,
                 line_uv: float = 20.0, line_hz: float = 60.0,
                 amplitude_range_uv: tuple[float, float] = (15.0, 120.0), block_s: float = 0.001,
                 noise_bank_s: float = 0.1, **cortex: Any) -> None:
        if int(n_channels) < 1:
            raise ConfigError(f"n_channels must be >= 1, got {n_channels!r}", "use e.g. 96")
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ConfigError(f"rate_hz must be > 0, got {rate_hz!r}", "use e.g. 30000")
        block = int(round(block_s * rate_hz))
        if block < 1 or abs(block - block_s * rate_hz) > 1e-6 * block:
            raise ConfigError(f"block_s={block_s} s is not a whole number of samples at {rate_hz:g} Hz",
                              f"use a multiple of {1 / rate_hz:.6g} s (default 0.001)")
        for label, value in (("noise_uv", noise_uv), ("common_uv", common_uv), ("line_uv", line_uv)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{label} must be >= 0 µV, got {value!r}", "give a level in µV")
        self.n_channels = int(n_channels)
        self.rate_hz = float(rate_hz)
        self.seed = int(seed)
        self.block = block
        self.kinematics_every = block
        self.noise_uv, self.common_uv, self.line_uv = float(noise_uv), float(common_uv), float(line_uv)
        self.line_hz = float(line_hz)
        self.cortex = CortexSimulator(self.n_channels, 1.0 / block_s, seed, subject_seed=subject_seed,
                                      **cortex)
        self.subject_seed = self.cortex.subject_seed
        units = np.random.default_rng(np.random.SeedSequence(self.subject_seed).spawn(4)[3])
        self.amplitudes_uv = units.uniform(*amplitude_range_uv, self.n_channels)
        self.templates = _waveforms(units, self.amplitudes_uv, self.rate_hz)
        self._session = np.random.SeedSequence(self.seed).spawn(8)[4:]
        bank_rng = np.random.default_rng(self._session[0])
        rows = max(int(round(noise_bank_s * self.rate_hz)), 4 * block)
        self._bank = bank_rng.standard_normal((rows, self.n_channels), dtype=np.float32)
        self._bank *= np.float32(self.noise_uv)
        self.reset()

    def reset(self) -> None:
        """Back to sample 0: every random stream rewound, no pending spikes."""
        self.cortex.reset()
        self._pick_rng, self._common_rng, self._spike_rng = (np.random.default_rng(s)
                                                             for s in self._session[1:])
        self._tail = np.zeros((self.templates.shape[1], self.n_channels), dtype=np.float32)
        self._left = np.zeros((0, self.n_channels), dtype=np.float32)  # produced, not returned
        self._kin = np.zeros((0, 4), dtype=np.float32)  # kinematics of produced blocks, not returned
        self._cortex = (np.zeros((0, self.n_channels), np.float32), np.zeros((0, 4), np.float32))
        self._blocks = 0  # blocks produced
        self.n_generated = 0

    def channel_labels(self) -> list[str]:
        """One label per channel: ``e001`` …"""
        return [f"e{i + 1:03d}" for i in range(self.n_channels)]

    def _units(self, nb: int) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts float32 (nb, C) and kinematics float32 (nb, 4) of the next ``nb`` blocks,
        from the cortex model run ``CORTEX_BATCH`` blocks at a time (its per-call cost is
        mostly fixed)."""
        if self._cortex[0].shape[0] < nb:
            counts, kin = self.cortex.generate(max(CORTEX_BATCH, nb - self._cortex[0].shape[0]))
            self._cortex = (np.concatenate([self._cortex[0], counts]),
                            np.concatenate([self._cortex[1], kin]))
        counts, kin = self._cortex
        self._cortex = (counts[nb:], kin[nb:])
        return counts[:nb], kin[:nb]

    def _produce(self, nb: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``nb`` blocks: samples float32 (nb · block, C), kinematics float32 (nb, 4).

        Summation order is fixed per sample (spikes in order, then noise, then common mode), so
        producing blocks one by one or many at once gives the same float32 values.
        """
        b, c = self.block, self.n_channels
        counts, kin = self._units(nb)
        n, span = nb * b, self.templates.shape[1]
        acc = np.zeros((n + span, c), dtype=np.float32)
        acc[:span] += self._tail
        blk, unit = np.nonzero(counts)
        if blk.size:
            reps = counts[blk, unit].astype(np.intp)
            blk, unit = np.repeat(blk, reps), np.repeat(unit, reps)
            start = blk * b + (self._spike_rng.random(blk.size) * b).astype(np.intp)
            np.add.at(acc, (start[:, None] + np.arange(span), unit[:, None]), self.templates[unit])
        pick = self._pick_rng.random((nb, 2))
        offsets = (pick[:, 0] * (self._bank.shape[0] - b + 1)).astype(np.intp)
        for j, (o, negative) in enumerate(zip(offsets.tolist(), (pick[:, 1] < 0.5).tolist(),
                                              strict=True)):
            (np.subtract if negative else np.add)(acc[j * b : (j + 1) * b], self._bank[o : o + b],
                                                  out=acc[j * b : (j + 1) * b])
        i = (self._blocks * b + np.arange(n)) / self.rate_hz
        common = self._common_rng.standard_normal(n) * self.common_uv
        common += self.line_uv * np.sin(2.0 * np.pi * self.line_hz * i)
        x = acc[:n]
        x += common.astype(np.float32)[:, None]
        self._tail = acc[n:].copy()
        self._blocks += nb
        return x, kin

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` samples (state carries over to the next call).

        Returns
        -------
        x : float32 (n, n_channels)
            Broadband samples, µV.
        kinematics : float32 (m, 4)
            ``px, py`` (cm), ``vx, vy`` (cm/s) of the m blocks whose last sample is among
            these n (block k's row belongs to sample ``(k + 1) · block − 1``).
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        need = n - self._left.shape[0]
        if need > 0:
            x, kin = self._produce(-(-need // self.block))
            self._left = np.concatenate([self._left, x]) if self._left.size else x
            self._kin = np.concatenate([self._kin, kin])
        out, self._left = self._left[:n], self._left[n:]
        done = (self.n_generated + n) // self.block - self.n_generated // self.block
        kin_out, self._kin = self._kin[:done], self._kin[done:]
        self.n_generated += n
        return np.ascontiguousarray(out), kin_out

    def describe(self) -> dict[str, Any]:
        """The simulation's parameters as JSON-able values (for ``meta`` / provenance)."""
        return {"n_channels": self.n_channels, "rate_hz": self.rate_hz, "seed": self.seed,
                "subject_seed": self.subject_seed, "noise_uv": self.noise_uv,
                "common_uv": self.common_uv, "line_uv": self.line_uv, "line_hz": self.line_hz,
                "block_s": self.block / self.rate_hz,
                "amplitudes_uv": [round(float(a), 3) for a in self.amplitudes_uv]}


def _waveforms(rng: np.random.Generator, amplitudes: np.ndarray, rate_hz: float) -> np.ndarray:
    """One biphasic waveform per unit, float32 (n, T): a Gaussian trough of ``-amplitude`` µV at
    0.4 ms and a slower positive after-hyperpolarisation (20–50 % of it) 0.3–0.5 ms later."""
    n = amplitudes.size
    tau = np.arange(int(round(WAVEFORM_S * rate_hz))) / rate_hz
    w1, w2 = rng.uniform(1e-4, 2e-4, n)[:, None], rng.uniform(2e-4, 4e-4, n)[:, None]
    lag, ratio = rng.uniform(3e-4, 5e-4, n)[:, None], rng.uniform(0.2, 0.5, n)[:, None]
    trough = np.exp(-0.5 * ((tau - 4e-4) / w1) ** 2)
    ahp = ratio * np.exp(-0.5 * ((tau - 4e-4 - lag) / w2) ** 2)
    shape = trough - ahp
    shape /= -shape.min(axis=1, keepdims=True)
    return (shape * amplitudes[:, None]).astype(np.float32)


def simulate_broadband_recording(duration_s: float, *, n_channels: int = 32, rate_hz: float = 30000.0,
                                 seed: int = 0, **kwargs: Any) -> Recording:
    """Simulate ``duration_s`` seconds of broadband data as a :class:`Recording`.

    Returns
    -------
    Recording
        ``x`` float32 (n, n_channels) µV; ``y`` float32 (n, 4) ``px, py`` (cm), ``vx, vy``
        (cm/s), each sample carrying its block's kinematics; ``meta`` the parameters.
    """
    sim = BroadbandSimulator(n_channels, rate_hz, seed, **kwargs)
    n = int(round(duration_s * sim.rate_hz))
    if n < sim.block:
        raise ConfigError(f"duration_s={duration_s!r} is shorter than one block",
                          f"use at least {sim.block / sim.rate_hz:g} s")
    n -= n % sim.block
    x, kin = sim.generate(n)
    return Recording(x=x, fs=sim.rate_hz, y=np.repeat(kin, sim.block, axis=0),
                     channel_names=sim.channel_labels(), target_names=list(KINEMATICS_NAMES),
                     meta={"dataset": "simulated_broadband", "stream_type": sim.stream_type,
                           "units": {"x": "µV", **dict(zip(KINEMATICS_NAMES, KINEMATICS_UNITS,
                                                            strict=True))},
                           **sim.describe()})


def simulator_blocks(sim: BroadbandSimulator, seconds: float,
                     block_s: float = 1.0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``seconds`` of a simulator's output in blocks: (x float32 (n, C) µV, y float32 (n, 4)
    kinematics per sample), for training and calibration without holding a session in memory.

    Blocks are whole numbers of the simulator's blocks, so every sample gets its block's
    kinematics row.
    """
    step = max(1, int(round(block_s * sim.rate_hz / sim.block))) * sim.block
    left = int(round(seconds * sim.rate_hz)) // sim.block * sim.block
    while left > 0:
        x, kin = sim.generate(min(step, left))
        left -= len(x)
        yield x, np.repeat(kin, sim.block, axis=0)
