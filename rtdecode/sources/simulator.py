"""Simulated motor cortex (seed 002): cosine-tuned Poisson neurons driven by a random smooth
2-D hand trajectory, offline (:func:`simulate_cortex_recording`) and live over LSL
(:class:`SimulatorOutlets`).

Model (per sample, ``dt = 1 / rate_hz``)
----------------------------------------
* Velocity ``v`` (cm/s, 2-D): white Gaussian noise through a 2nd-order Butterworth low-pass
  (``cutoff_hz``, state kept between calls), scaled so each axis has standard deviation
  ``v_std_cm_s`` (|v| mostly within ±20 cm/s with the defaults).
* Position ``p`` (cm): ``p[k] = a * p[k-1] + dt * v[k]`` with ``a = exp(-dt / leak_tau_s)``,
  a weak leak toward 0 that keeps the hand in a bounded workspace.
* Neuron ``i`` fires with rate ``λ_i = max(0, b_i + m_i * (v · u_i) / v_ref_cm_s)`` Hz
  (cosine tuning to the velocity direction, scaled by speed; ``u_i`` a random unit preferred
  direction, baseline ``b_i`` and modulation depth ``m_i`` drawn uniformly) and emits a
  Poisson count with mean ``λ_i * dt`` in each sample.

Randomness comes from three independent streams spawned from ``seed`` (tuning, trajectory,
spikes), so ``generate`` in any chunk sizes gives exactly the same output as one call.

:class:`SimulatorOutlets` streams any :class:`SimulatedSource` (this model, or the broadband
electrodes of :mod:`rtdecode.sources.broadband`) with its kinematics on a second outlet.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any, Protocol

import numpy as np

from rtdecode.errors import ConfigError, SourceError
from rtdecode.io.recording import Recording
from rtdecode.lsl import pylsl
from rtdecode.resource import Resource
from rtdecode.sources.pacing import (
    DEFAULT_CHUNK_S,
    Pacer,
    chunk_samples_for,
    linger_before_destroy,
)

logger = logging.getLogger(__name__)

#: Names and units of the kinematics columns.
KINEMATICS_NAMES = ("px", "py", "vx", "vy")
KINEMATICS_UNITS = ("cm", "cm", "cm/s", "cm/s")


#: The simulated subject the shipped ``cortex_wiener`` model was fitted on.
DEFAULT_SUBJECT = 7


class CortexSimulator:
    """Streaming simulator of cosine-tuned motor-cortex neurons and the hand trajectory.

    Parameters
    ----------
    n_neurons : int
        Number of simulated neurons.
    rate_hz : float
        Samples per second.
    seed : int
        Seed of all random streams (tuning, trajectory, spikes).
    cutoff_hz : float
        Cut-off of the 2nd-order Butterworth low-pass that shapes the velocity, Hz.
    v_std_cm_s : float
        Standard deviation of each velocity component, cm/s.
    leak_tau_s : float
        Time constant of the position leak toward 0, s.
    v_ref_cm_s : float
        Speed at which a neuron's modulation reaches ``modulation_hz`` along its preferred
        direction, cm/s.
    baseline_range_hz, modulation_range_hz : (float, float)
        Uniform ranges of the baselines ``b_i`` and modulation depths ``m_i``, Hz (defaults
        give ~10 Hz at rest and 40-60 Hz at ``v_ref`` along the preferred direction).
    subject_seed : int, optional
        Seed of the tuning alone (the simulated "subject"): with it, ``seed`` only changes
        the trajectory and the spikes, so a decoder fitted on one seed can be tested on
        another of the same subject. Default: tuning from ``seed``.

    Attributes
    ----------
    preferred_directions : float64 (n_neurons, 2)
        Unit preferred-direction vectors ``u_i``.
    preferred_angles_rad : float64 (n_neurons,)
        Their angles, rad.
    baseline_hz, modulation_hz : float64 (n_neurons,)
        ``b_i`` and ``m_i``, Hz.
    n_generated : int
        Samples generated since construction / :meth:`reset`.
    """

    stream_type = "Spikes"
    channel_unit = "count"
    #: one kinematics row per sample
    kinematics_every = 1

    def __init__(self, n_neurons: int = 50, rate_hz: float = 1000.0, seed: int = 0, *,
                 cutoff_hz: float = 0.8, v_std_cm_s: float = 8.0, leak_tau_s: float = 3.0,
                 v_ref_cm_s: float = 20.0,
                 baseline_range_hz: tuple[float, float] = (5.0, 15.0),
                 modulation_range_hz: tuple[float, float] = (30.0, 50.0),
                 subject_seed: int | None = None) -> None:
        if int(n_neurons) < 1:
            raise ConfigError(f"n_neurons must be >= 1, got {n_neurons!r}", "use e.g. 50")
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ConfigError(f"rate_hz must be > 0, got {rate_hz!r}", "use e.g. 1000")
        if not 0 < cutoff_hz < rate_hz / 2:
            raise ConfigError(f"cutoff_hz {cutoff_hz!r} must lie in (0, rate_hz/2 = "
                              f"{rate_hz / 2:g})", "use e.g. 0.8 Hz")
        for label, value in (("v_std_cm_s", v_std_cm_s), ("leak_tau_s", leak_tau_s),
                             ("v_ref_cm_s", v_ref_cm_s)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{label} must be > 0, got {value!r}", "give a positive value")
        self.n_neurons = int(n_neurons)
        self.rate_hz = float(rate_hz)
        self.seed = int(seed)
        self.cutoff_hz = float(cutoff_hz)
        self.v_std_cm_s = float(v_std_cm_s)
        self.leak_tau_s = float(leak_tau_s)
        self.v_ref_cm_s = float(v_ref_cm_s)
        self.dt_s = 1.0 / self.rate_hz

        tuning_ss, self._kin_ss, self._spk_ss = np.random.SeedSequence(self.seed).spawn(3)
        self.subject_seed = self.seed if subject_seed is None else int(subject_seed)
        if subject_seed is not None:  # same neurons as seed=subject_seed, other trajectory/spikes
            tuning_ss = np.random.SeedSequence(self.subject_seed).spawn(3)[0]
        rng = np.random.default_rng(tuning_ss)
        self.preferred_angles_rad = rng.uniform(-np.pi, np.pi, self.n_neurons)
        self.preferred_directions = np.column_stack([np.cos(self.preferred_angles_rad),
                                                     np.sin(self.preferred_angles_rad)])
        self.baseline_hz = rng.uniform(*baseline_range_hz, self.n_neurons)
        self.modulation_hz = rng.uniform(*modulation_range_hz, self.n_neurons)

        from scipy import signal  # here, not with the module: see rtdecode.dsp.filters

        self._sosfilt, self._lfilter = signal.sosfilt, signal.lfilter  # what generate() calls
        self._sos = signal.butter(2, self.cutoff_hz, btype="low", fs=self.rate_hz,
                                  output="sos")
        impulse = np.zeros(int(20 * self.rate_hz / self.cutoff_hz))
        impulse[0] = 1.0
        gain = math.sqrt(float(np.sum(signal.sosfilt(self._sos, impulse) ** 2)))
        self._noise_scale = self.v_std_cm_s / gain
        self._leak = math.exp(-self.dt_s / self.leak_tau_s)
        # Tuning as one (2, n_neurons) matrix: rate = b + v @ W, W = u.T * m / v_ref.
        self._W = (self.preferred_directions * (self.modulation_hz / self.v_ref_cm_s)[:, None]).T
        self.reset()

    def reset(self) -> None:
        """Return to the initial state (zero velocity and position, random streams rewound)."""
        self._kin_rng = np.random.default_rng(self._kin_ss)
        self._spk_rng = np.random.default_rng(self._spk_ss)
        self._zi_v = np.zeros((self._sos.shape[0], 2, 2))
        self._zi_p = np.zeros((1, 2))
        self.n_generated = 0

    @property
    def n_channels(self) -> int:
        """Channels of the spikes stream: one per neuron."""
        return self.n_neurons

    def channel_labels(self) -> list[str]:
        """One label per neuron: ``n001`` …"""
        return [f"n{i + 1:03d}" for i in range(self.n_neurons)]

    def rates_hz(self, velocity_cm_s: np.ndarray) -> np.ndarray:
        """Firing rates for velocities.

        Parameters
        ----------
        velocity_cm_s : float (n, 2)
            Velocities, cm/s.

        Returns
        -------
        float64 (n, n_neurons)
            ``max(0, b_i + m_i * (v · u_i) / v_ref)``, Hz.
        """
        v = np.asarray(velocity_cm_s, dtype=np.float64).reshape(-1, 2)
        return np.maximum(self.baseline_hz + v @ self._W, 0.0)

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Generate the next ``n`` samples (state carries over to the next call).

        Returns
        -------
        spikes : float32 (n, n_neurons)
            Spike count of each neuron in each sample.
        kinematics : float32 (n, 4)
            ``px, py`` (cm), ``vx, vy`` (cm/s) at each sample.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return (np.zeros((0, self.n_neurons), dtype=np.float32),
                    np.zeros((0, 4), dtype=np.float32))
        noise = self._kin_rng.standard_normal((n, 2)) * self._noise_scale
        v, self._zi_v = self._sosfilt(self._sos, noise, axis=0, zi=self._zi_v)
        p, self._zi_p = self._lfilter([self.dt_s], [1.0, -self._leak], v, axis=0,
                                       zi=self._zi_p)
        spikes = self._spk_rng.poisson(self.rates_hz(v) * self.dt_s).astype(np.float32)
        kinematics = np.column_stack([p, v]).astype(np.float32)
        self.n_generated += n
        return spikes, kinematics

    def tuning(self) -> dict[str, list[float]]:
        """The tuning parameters as JSON-able lists (for ``meta`` / provenance)."""
        return {"preferred_angles_rad": self.preferred_angles_rad.tolist(),
                "baseline_hz": self.baseline_hz.tolist(),
                "modulation_hz": self.modulation_hz.tolist(),
                "v_ref_cm_s": [self.v_ref_cm_s]}


def simulate_cortex_recording(duration_s: float, *, seed: int = 0, n_neurons: int = 50,
                              rate_hz: float = 1000.0, **kwargs: Any) -> Recording:
    """Simulate ``duration_s`` seconds of cortex as a :class:`Recording`.

    Parameters
    ----------
    duration_s : float
        Length, s.
    seed, n_neurons, rate_hz :
        As :class:`CortexSimulator`; other keyword arguments go to it too.

    Returns
    -------
    Recording
        ``x`` float32 (n, n_neurons) spike counts per sample; ``y`` float32 (n, 4)
        ``px, py`` (cm), ``vx, vy`` (cm/s); ``meta`` holds units, the seed and the tuning.
    """
    sim = CortexSimulator(n_neurons=n_neurons, rate_hz=rate_hz, seed=seed, **kwargs)
    n = int(round(duration_s * sim.rate_hz))
    if n < 1:
        raise ConfigError(f"duration_s={duration_s!r} gives no samples at {rate_hz:g} Hz",
                          "use a longer duration")
    spikes, kinematics = sim.generate(n)
    return Recording(
        x=spikes, fs=sim.rate_hz, y=kinematics,
        channel_names=sim.channel_labels(),
        target_names=list(KINEMATICS_NAMES),
        meta={"dataset": "simulated_cortex", "stream_type": "Spikes", "seed": seed,
              "subject_seed": sim.subject_seed,
              "units": {"x": "spike count per sample", **dict(zip(KINEMATICS_NAMES,
                                                                  KINEMATICS_UNITS,
                                                                  strict=True))},
              "tuning": sim.tuning()},
    )


class SimulatedSource(Protocol):
    """What :class:`SimulatorOutlets` streams: a chunk-invariant generator of samples and of
    the true kinematics (one row per ``kinematics_every`` samples)."""

    rate_hz: float
    seed: int
    stream_type: str
    channel_unit: str
    kinematics_every: int

    @property
    def n_channels(self) -> int: ...

    def channel_labels(self) -> list[str]: ...

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]: ...


class SimulatorOutlets(Resource):
    """Stream a simulator live: its samples and the kinematics on two LSL outlets.

    Parameters
    ----------
    sim : SimulatedSource
        The simulator (:class:`CortexSimulator`, or
        :class:`~rtdecode.sources.broadband.BroadbandSimulator`); its state advances as samples
        are pushed.
    name : str
        Name of the data stream (type ``sim.stream_type``, ``sim.n_channels`` channels); the
        kinematics stream is ``name + "-kinematics"`` (type ``"Kinematics"``, 4 channels:
        px, py in cm, vx, vy in cm/s, at ``rate_hz / sim.kinematics_every``).
    chunk_s : float
        Chunk duration, s (default 1 ms, at least one sample).
    source_id : str, optional
        Source id of the data stream (the kinematics one appends ``"-kinematics"``).
    linger_s : float
        On :meth:`close`, while a consumer is connected, wait this long so the last chunks
        reach it (default 0.5 s).

    Notes
    -----
    Sample ``i`` carries the timestamp ``t0 + i / rate_hz``; kinematics row ``k`` that of sample
    ``(k + 1) · kinematics_every − 1`` (the same stamps for the cortex model). The
    constructor does no I/O; :meth:`open` / :meth:`close` (idempotent) or ``with``.
    """

    def __init__(self, sim: SimulatedSource, name: str = "rtdecode-sim-cortex", *,
                 chunk_s: float = DEFAULT_CHUNK_S, source_id: str | None = None,
                 linger_s: float = 0.5) -> None:
        if not name:
            raise ConfigError("the LSL stream name is empty", "give the stream a name")
        self.sim = sim
        self.name = name
        self.kinematics_name = f"{name}-kinematics"
        self.source_id = source_id if source_id is not None else f"rtdecode-sim:{name}"
        self.chunk_samples = chunk_samples_for(sim.rate_hz, chunk_s)
        self.linger_s = max(0.0, float(linger_s))
        #: Samples pushed since :meth:`open`.
        self.n_pushed = 0
        self._data: pylsl.StreamOutlet | None = None
        self._kin: pylsl.StreamOutlet | None = None

    def _info(self, name: str, stype: str, labels: list[str], units: list[str],
              source_id: str, rate_hz: float) -> pylsl.StreamInfo:
        info = pylsl.StreamInfo(name, stype, len(labels), rate_hz, pylsl.cf_float32, source_id)
        channels = info.desc().append_child("channels")
        for label, unit in zip(labels, units, strict=True):
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
        extra = info.desc().append_child("rtdecode")
        extra.append_child_value("producer", type(self.sim).__module__)
        extra.append_child_value("seed", str(self.sim.seed))
        return info

    def open(self) -> SimulatorOutlets:
        """Create both outlets (idempotent). Returns ``self``."""
        if self._data is None or self._kin is None:
            sim = self.sim
            try:
                # Data last: with a loopback-only config, the first (fast) resolve wave
                # reaches only the most recently created outlet on the machine, so a
                # consumer that resolves with short timeouts (< ~0.8 s) finds the data
                # stream; later waves find both.
                self._kin = pylsl.StreamOutlet(self._info(
                    self.kinematics_name, "Kinematics", list(KINEMATICS_NAMES),
                    list(KINEMATICS_UNITS), f"{self.source_id}-kinematics",
                    sim.rate_hz / sim.kinematics_every))
                self._data = pylsl.StreamOutlet(self._info(
                    self.name, sim.stream_type, sim.channel_labels(),
                    [sim.channel_unit] * sim.n_channels, self.source_id, sim.rate_hz))
            except Exception as err:
                self.close()
                raise SourceError(f"cannot create LSL outlets {self.name!r}: {err}",
                                  "check the LSL configuration (LSLAPICFG) and free ports") \
                    from err
            self.n_pushed = 0
            logger.info("simulator outlets %r (+ %r) open: %d channels (%s) at %g Hz",
                        self.name, self.kinematics_name, sim.n_channels, sim.stream_type,
                        sim.rate_hz)
        return self

    def close(self) -> None:
        """Destroy both outlets (idempotent)."""
        outlets = [o for o in (self._data, self._kin) if o is not None]
        self._data = None
        self._kin = None
        if outlets:
            linger_before_destroy(outlets, self.linger_s, self.n_pushed > 0)
            del outlets
            logger.info("simulator outlets %r closed after %d samples", self.name,
                        self.n_pushed)

    def _outlets(self) -> tuple[pylsl.StreamOutlet, pylsl.StreamOutlet]:
        if self._data is None or self._kin is None:
            raise SourceError(f"simulator outlets {self.name!r} are not open",
                              "call open() (or use `with SimulatorOutlets(...)`) first")
        return self._data, self._kin

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """Block until the data stream has a consumer or ``timeout_s`` passes."""
        return bool(self._outlets()[0].wait_for_consumers(float(timeout_s)))

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> int:
        """Generate and push samples in real time; returns the samples pushed.

        Parameters
        ----------
        stop : threading.Event, optional
            Ends the run (after the current chunk) once set.
        duration_s : float, optional
            Push ``round(duration_s * rate_hz)`` samples; without it, run until ``stop``.
        """
        data_out, kin_out = self._outlets()
        rate, every = self.sim.rate_hz, self.sim.kinematics_every
        limit = math.inf if duration_s is None else max(0, int(round(duration_s * rate)))
        chunk = self.chunk_samples
        ramp = np.arange(chunk, dtype=np.float64)
        stamps = np.empty(chunk, dtype=np.float64)
        pacer = Pacer(rate, chunk)
        t0 = pacer.start()
        logger.info("simulator %r started", self.name)
        i = k = 0  # samples and kinematics rows pushed
        try:
            while i < limit and not (stop is not None and stop.is_set()):
                n = int(min(chunk, limit - i))
                x, kinematics = self.sim.generate(n)
                np.add(ramp[:n], i, out=stamps[:n])
                stamps[:n] /= rate
                stamps[:n] += t0
                pacer.wait_until(pacer.sample_time(i + n), stop)
                if stop is not None and stop.is_set():
                    break
                data_out.push_chunk(x, stamps[:n].tolist())
                if len(kinematics):
                    rows = k + np.arange(1, len(kinematics) + 1)
                    kin_out.push_chunk(kinematics, (t0 + (rows * every - 1) / rate).tolist())
                    k += len(kinematics)
                i += n
                self.n_pushed += n
        finally:
            logger.info("simulator %r stopped after %d samples (%d late chunks)",
                        self.name, i, pacer.n_late)
        return i
