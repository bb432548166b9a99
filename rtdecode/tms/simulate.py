"""The TMS rig to test against: 15-muscle EMG at 2 kHz with MEPs after each pulse, and markers.

Signal per muscle (µV): band-limited background EMG (20–450 Hz, RMS 4–8 µV) + for each pulse
a short stimulus artefact (all channels, blanked by the measurement) + the MEP, a smooth
biphasic wave of 12 ms starting at the muscle's onset latency, scaled to the response's peak
to peak + tonic EMG (RMS 60–150 µV) from 0.6 s before to 0.3 s after the pulse in pre-activated
muscles. An optional trigger channel ``TRIG`` carries a 1-ms 5-V step at each pulse.

:class:`TmsSimulator` renders samples in any chunking with exactly the same result (one
random stream per purpose, filter state carried), so a live run and :meth:`TmsSimulator.recording`
give identical samples. :class:`TmsOutlets` streams it to LSL with a marker per pulse whose
timestamp is the pulse sample's (payload: docs/tms.md).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Generator, Iterator

import numpy as np
from scipy import signal

from rtdecode.errors import ConfigError, SourceError
from rtdecode.io.recording import Recording
from rtdecode.lsl import pylsl
from rtdecode.resource import Resource
from rtdecode.sources.markers import MarkerOutlet
from rtdecode.sources.pacing import DEFAULT_CHUNK_S, Pacer, chunk_samples_for, linger_before_destroy
from rtdecode.tms.mapping import Stimulus, Trial, deliver
from rtdecode.tms.subject import MUSCLES, VirtualSubject

logger = logging.getLogger(__name__)

__all__ = ["TmsOutlets", "TmsSimulator", "marker_label", "write_table"]

_MEP_MS = 12.0
_PRE_BEFORE_S, _PRE_AFTER_S = 0.6, 0.3
_ARTEFACT_UV = np.array([900.0, -600.0, 250.0, -80.0, 20.0])
TRIGGER_V = 5.0


def marker_label(trial: Trial) -> str:
    """The JSON marker of a trial: pulse, intensity (%RMT, and %MSO), coil pose (mm, unit vectors)."""
    pose = trial.pose
    return json.dumps({
        "pulse": trial.pulse, "intensity": round(trial.stimulus.intensity_rmt, 3), "unit": "%RMT",
        "intensity_mso": round(trial.intensity_mso, 3),
        "coil": {"position_mm": [round(float(v) * 1e3, 4) for v in pose.center],
                 "normal": [round(float(v), 6) for v in pose.normal],
                 "direction": [round(float(v), 6) for v in pose.direction]}})


class TmsSimulator:
    """Streaming signal of the virtual subject under a protocol.

    Parameters
    ----------
    subject : VirtualSubject
    protocol : generator of Stimulus
        E.g. :func:`rtdecode.tms.mapping.mapping_protocol` (driven with the MEPs) or
        :func:`~rtdecode.tms.mapping.fixed_protocol`.
    rate_hz : float
        Samples per second (default 2 kHz).
    isi_s : float
        Mean inter-stimulus interval, s (each interval drawn uniformly within ±10 %).
    first_s : float
        Time of the first pulse, s.
    seed : int
        Seed of the background EMG, pulse timing, variability and pre-activation.
    preactivation_prob : float
        Probability that a pulse meets a voluntarily contracted muscle group.
    trigger : bool
        Add the ``TRIG`` channel.
    """

    def __init__(self, subject: VirtualSubject, protocol: Iterator[Stimulus], *,
                 rate_hz: float = 2000.0, isi_s: float = 4.0, first_s: float = 1.0, seed: int = 0,
                 preactivation_prob: float = 0.05, trigger: bool = False) -> None:
        if not (rate_hz >= 1000.0 and isi_s > 0.5 * (_PRE_BEFORE_S + _PRE_AFTER_S) and first_s > 0):
            raise ConfigError(f"simulator rate {rate_hz} Hz / ISI {isi_s} s / first pulse {first_s} s",
                              "use rate_hz >= 1000, isi_s > 0.45 and first_s > 0")
        self.subject = subject
        self.rate_hz = float(rate_hz)
        self.isi_s = float(isi_s)
        self.preactivation_prob = float(preactivation_prob)
        self.trigger = bool(trigger)
        self.rmt_mso = subject.resting_motor_threshold()
        self.channel_names = list(MUSCLES) + (["TRIG"] if trigger else [])
        rngs = np.random.default_rng([seed, 1]).spawn(3)
        self._noise_rng, self._time_rng, self._trial_rng = rngs
        self._sos = signal.butter(2, (20.0, 450.0), btype="bandpass", fs=self.rate_hz, output="sos")
        self._zi = np.zeros((self._sos.shape[0], 2, len(MUSCLES)))
        self._noise_rms = np.random.default_rng([seed, 2]).uniform(4.0, 8.0, len(MUSCLES))
        self._protocol = protocol
        self._started = False
        self.done = False
        self._next_t = float(first_s)
        self.trials: list[Trial] = []
        self.pulse_samples: list[int] = []
        self.pos = 0
        self._active: list[tuple[int, np.ndarray]] = []  # (first sample, contribution (n, M))

    @property
    def n_channels(self) -> int:
        """Channels of the stream (15 muscles, + TRIG)."""
        return len(self.channel_names)

    def plan_next(self) -> bool:
        """Plan the next pulse of the protocol without rendering; False when it is over."""
        return not self.done and self._next_trial()

    def _next_trial(self) -> bool:
        """Plan the next pulse; False when the protocol is over."""
        try:
            if not self._started:
                stim = next(self._protocol)
                self._started = True
            else:
                prev = self.trials[-1].response.mep_uv if self.trials else None
                stim = (self._protocol.send(prev) if isinstance(self._protocol, Generator)
                        else next(self._protocol))
        except StopIteration:
            self.done = True
            return False
        trial = deliver(self.subject, stim, self.rmt_mso, len(self.trials), self._trial_rng,
                        self.preactivation_prob)
        k = int(round(self._next_t * self.rate_hz))
        self.trials.append(trial)
        self.pulse_samples.append(k)
        self._active.append(self._contribution(trial, k))
        self._next_t += self.isi_s * float(self._time_rng.uniform(0.9, 1.1))
        return True

    def _contribution(self, trial: Trial, k: int) -> tuple[int, np.ndarray]:
        """The samples a pulse adds (artefact, MEPs, pre-activation, trigger), from its first one."""
        fs = self.rate_hz
        rng = np.random.default_rng([trial.pulse, 7, len(self.pulse_samples)])
        n_pre, n_post = int(_PRE_BEFORE_S * fs), int(_PRE_AFTER_S * fs)
        out = np.zeros((n_pre + n_post, self.n_channels))
        t_ms = (np.arange(n_post) / fs) * 1e3  # after the pulse
        m = len(MUSCLES)
        for j in range(m):
            u = (t_ms - trial.response.latency_ms[j]) / _MEP_MS
            wave = np.where((u >= 0) & (u <= 1), np.sin(2 * np.pi * u) * np.sin(np.pi * u), 0.0)
            span = wave.max() - wave.min()
            if span > 0:
                out[n_pre:, j] = wave * (trial.response.mep_uv[j] / span)
        out[n_pre:n_pre + len(_ARTEFACT_UV), :m] += _ARTEFACT_UV[:, None] * rng.uniform(0.8, 1.2, m)
        pre = np.flatnonzero(trial.preactivated)
        if pre.size:
            tonic = signal.sosfilt(self._sos, rng.standard_normal((n_pre + n_post, pre.size)), axis=0)
            tonic *= rng.uniform(60.0, 150.0, pre.size) / tonic.std(axis=0)
            out[:, pre] += tonic
        if self.trigger:
            out[n_pre:n_pre + max(1, int(round(1e-3 * fs))), m] = TRIGGER_V
        return k - n_pre, out

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples, float32 (n, n_channels), µV (TRIG in V)."""
        i0, i1 = self.pos, self.pos + n
        while not self.done and (not self.pulse_samples or self.pulse_samples[-1]
                                 < i1 + int(_PRE_BEFORE_S * self.rate_hz)):
            self._next_trial()
        x = np.zeros((n, self.n_channels))
        noise = self._noise_rng.standard_normal((n, len(MUSCLES)))
        bg, self._zi = signal.sosfilt(self._sos, noise, axis=0, zi=self._zi)
        x[:, :len(MUSCLES)] = bg * (self._noise_rms / 0.45)  # unit noise → ~0.45 RMS after the band
        keep = []
        for start, c in self._active:
            a, b = max(i0, start), min(i1, start + len(c))
            if a < b:
                x[a - i0:b - i0] += c[a - start:b - start]
            if start + len(c) > i1:
                keep.append((start, c))
        self._active = keep
        self.pos = i1
        return x.astype(np.float32)

    @property
    def end_sample(self) -> int | None:
        """Sample after which nothing more happens (last pulse + 1 s), once the protocol is over."""
        if not self.done:
            return None
        return self.pulse_samples[-1] + int(self.rate_hz) if self.pulse_samples else 0

    def recording(self, n_samples: int) -> Recording:
        """Render ``n_samples`` from the current position as a Recording with its markers."""
        start = self.pos
        x = self.render(n_samples)
        marks = [(k - start, marker_label(t)) for k, t in zip(self.pulse_samples, self.trials,
                                                              strict=True) if start <= k < start + n_samples]
        return Recording(x=x, fs=self.rate_hz, channel_names=self.channel_names, meta={
            "stream_type": "EMG", "units": {"x": "uV"}, "dataset": "rtdecode simulate tms",
            "markers": (np.array([k for k, _ in marks], np.float64) / self.rate_hz,
                        [lab for _, lab in marks]), "rmt_mso": self.rmt_mso})


class TmsOutlets(Resource):
    """Stream a :class:`TmsSimulator` to LSL: ``NAME`` (EMG, µV) and ``NAME-markers`` (one per pulse).

    Parameters
    ----------
    sim : TmsSimulator
    name : str
        EMG stream name; the marker stream is ``NAME-markers``.
    chunk_s : float
        Chunk duration, s.
    marker_lead_s : float
        Push each marker this long before its pulse sample is pushed (negative: after).
    linger_s : float
        Wait this long before destroying the outlets while a consumer is connected.

    Notes
    -----
    The constructor does no I/O; :meth:`open` / :meth:`close` (idempotent), or ``with``.
    """

    def __init__(self, sim: TmsSimulator, name: str = "rtdecode-sim-tms", *,
                 chunk_s: float = DEFAULT_CHUNK_S, marker_lead_s: float = 0.0,
                 linger_s: float = 0.5) -> None:
        self.sim = sim
        self.name = name
        self.chunk_samples = chunk_samples_for(sim.rate_hz, chunk_s)
        self.marker_lead = int(round(marker_lead_s * sim.rate_hz))
        self.linger_s = linger_s
        self.markers = MarkerOutlet(f"{name}-markers", f"rtdecode-sim-tms:{name}-markers")
        self.n_pushed = 0
        self._outlet: pylsl.StreamOutlet | None = None
        self._next_marker = 0
        #: LSL time of sample 0 of the last run (its pulse k is at ``t0 + k / rate_hz``).
        self.t0 = math.nan

    def open(self) -> TmsOutlets:
        """Create both outlets (idempotent)."""
        if self._outlet is None:
            sim = self.sim
            info = pylsl.StreamInfo(self.name, "EMG", sim.n_channels, sim.rate_hz, pylsl.cf_float32,
                                    f"rtdecode-sim-tms:{self.name}")
            chans = info.desc().append_child("channels")
            for label in sim.channel_names:
                ch = chans.append_child("channel")
                ch.append_child_value("label", label)
                ch.append_child_value("unit", "V" if label == "TRIG" else "uV")
                ch.append_child_value("type", "TRIG" if label == "TRIG" else "EMG")
            try:
                self._outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
            except Exception as err:  # liblsl raises RuntimeError / OSError variants
                raise SourceError(f"cannot create LSL outlet {self.name!r}: {err}",
                                  "check the LSL configuration (LSLAPICFG)") from err
            self.markers.open()
        return self

    def close(self) -> None:
        """Destroy both outlets (idempotent)."""
        outlet, self._outlet = self._outlet, None
        if outlet is not None:
            linger_before_destroy([outlet], self.linger_s, self.n_pushed > 0)
            self.markers.close()
            del outlet

    def wait_for_consumers(self, timeout_s: float, markers: bool = True) -> bool:
        """Wait up to ``timeout_s`` for a consumer of the EMG stream, then (``markers``) of the markers.

        With a trigger channel the pulses are in the EMG stream: pass ``markers=False``.
        """
        if self._outlet is None or self.markers.outlet is None:
            raise SourceError("TMS outlets are not open", "call open() first")
        end = time.monotonic() + timeout_s
        ok = bool(self._outlet.wait_for_consumers(timeout_s))
        if ok and markers:
            ok = bool(self.markers.outlet.wait_for_consumers(max(0.0, end - time.monotonic())))
        return ok

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> int:
        """Stream until the protocol is over (+1 s), ``duration_s`` passes or ``stop`` is set.

        Returns the samples pushed. Sample ``i`` has the timestamp ``t0 + i / rate_hz``; the
        marker of a pulse at sample ``k`` has ``t0 + k / rate_hz``.
        """
        if self._outlet is None:
            raise SourceError("TMS outlets are not open", "call open() first")
        sim, chunk = self.sim, self.chunk_samples
        limit = math.inf if duration_s is None else int(round(duration_s * sim.rate_hz))
        pacer = Pacer(sim.rate_hz, chunk)
        self.t0 = pacer.start()
        i = 0
        while i < limit and not (stop is not None and stop.is_set()):
            end = sim.end_sample
            if end is not None and i >= end:
                break
            x = sim.render(chunk)
            stamps = [pacer.sample_time(i + j) for j in range(chunk)]
            pacer.wait_until(stamps[-1], stop)
            self._outlet.push_chunk(x, stamps)
            i += chunk
            self.n_pushed += chunk
            self._push_markers(i, pacer)
        return i

    def _push_markers(self, pushed: int, pacer: Pacer) -> None:
        sim = self.sim
        while (self._next_marker < len(sim.pulse_samples)
               and sim.pulse_samples[self._next_marker] - self.marker_lead < pushed):
            k = sim.pulse_samples[self._next_marker]
            self.markers.push(marker_label(sim.trials[self._next_marker]), pacer.sample_time(k))
            self._next_marker += 1



def write_table(sim: TmsSimulator, path: str) -> None:
    """Write the simulated pulses as CSV: what a navigator and an MEP tool export, plus the truth.

    Columns: ``pulse``, ``t_s`` (pulse time from the stream start), ``intensity_rmt``,
    ``intensity_mso``, coil ``x_mm y_mm z_mm`` (centre, head frame), ``nx ny nz`` (normal),
    ``dx dy dz`` (induced-current direction), ``preactivated`` (muscles, ``;``-separated),
    then the true peak to peak per muscle, ``<muscle>_uv``.
    """
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["pulse", "t_s", "intensity_rmt", "intensity_mso", "x_mm", "y_mm", "z_mm",
                    "nx", "ny", "nz", "dx", "dy", "dz", "preactivated"]
                   + [f"{m}_uv" for m in MUSCLES])
        for k, tr in zip(sim.pulse_samples, sim.trials, strict=True):
            p = tr.pose
            w.writerow([tr.pulse, f"{k / sim.rate_hz:.4f}", tr.stimulus.intensity_rmt,
                        f"{tr.intensity_mso:.3f}", *(f"{v * 1e3:.4f}" for v in p.center),
                        *(f"{v:.6f}" for v in p.normal), *(f"{v:.6f}" for v in p.direction),
                        ";".join(MUSCLES[i] for i in np.flatnonzero(tr.preactivated)),
                        *(f"{v:.2f}" for v in tr.response.mep_uv)])
