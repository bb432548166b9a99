"""Replay a Recording through a real LSL outlet, paced on the LSL clock.

The player is the fake producer the service and its tests run against: it pushes a
recording in small chunks at ``fs * rate_factor`` samples per second, with an explicit
timestamp per sample from a drift-free schedule (``t0 + i / (fs * rate_factor)``), so a
consumer sees exactly the timing a live amplifier would give. With ``index_channel=k`` the
k-th column carries the running sample index instead of data, so a consumer can prove that
no sample was lost, duplicated or reordered. A recording with markers (``meta["markers"]``:
times in s from the first sample and labels, e.g. an XDF marker stream or one TMS pulse per
trace) also gets a marker outlet ``<name>-markers``, each marker stamped with the time of its
sample (:mod:`rtdecode.sources.markers`).
"""

from __future__ import annotations

import logging
import math
import threading
import time

import numpy as np

from rtdecode.errors import ConfigError, SourceError
from rtdecode.io.recording import Recording
from rtdecode.lsl import pylsl
from rtdecode.resource import Resource
from rtdecode.sources.markers import MarkerOutlet, MarkerSchedule
from rtdecode.sources.pacing import (
    DEFAULT_CHUNK_S,
    Pacer,
    chunk_samples_for,
    linger_before_destroy,
)

logger = logging.getLogger(__name__)

#: The index channel counts modulo this (float32 holds every integer below 2**24 exactly).
INDEX_MODULUS = 2**24


def copy_looped(dst: np.ndarray, src: np.ndarray, pos: int) -> int:
    """Fill ``dst`` with rows of ``src`` from row ``pos`` on, wrapping to row 0 at the end.

    Parameters
    ----------
    dst : (n, C)
        Rows to fill (any n, also more than ``src`` holds).
    src : (n_rec, C)
        The looped recording.
    pos : int
        Row of ``src`` to start from.

    Returns
    -------
    int
        The row of ``src`` to continue from next time.
    """
    n, n_rec = dst.shape[0], src.shape[0]
    filled = 0
    while filled < n:
        take = min(n - filled, n_rec - pos)
        dst[filled:filled + take] = src[pos:pos + take]
        filled += take
        pos = (pos + take) % n_rec
    return pos


class Player(Resource):
    """Push a :class:`Recording` through an LSL outlet in real time (or faster / slower).

    Parameters
    ----------
    recording : Recording
        Samples ``x`` float32 (n_samples, n_channels) and their rate ``fs`` (Hz).
    name : str
        LSL stream name.
    stype : str
        LSL content type (``"EEG"``, ``"EMG"``, ...).
    source_id : str, optional
        LSL source id (lets consumers recover after a restart). Default:
        ``"rtdecode-player:<name>"``.
    chunk_s : float
        Chunk duration, s (default 1 ms; at least one sample per chunk).
    rate_factor : float
        Playback speed: samples are pushed at ``fs * rate_factor`` per second. The outlet's
        nominal rate stays the file's true ``fs``.
    loop : bool
        Start again at the first sample after the last one (until stopped / ``duration_s``).
    index_channel : int, optional
        Replace column ``index_channel`` with the running sample index (0, 1, 2, ...;
        continues across loops and runs; counts modulo 2**24 so float32 stays exact).
    linger_s : float
        On :meth:`close`, while a consumer is connected, wait this long before destroying
        the outlet so the last chunks reach it (liblsl drops what is still queued when an
        outlet is destroyed). Default 0.5 s; 0 closes at once.
    markers : bool
        Push the recording's markers (``meta["markers"]``, if any) on ``<name>-markers``.
    marker_lead_s : float
        Push each marker this long before its sample is pushed (negative: after it, as a
        late marker); its timestamp is always its sample's.

    Notes
    -----
    The constructor does no I/O: :meth:`open` creates the outlet, :meth:`close` (idempotent)
    destroys it; the player is also a context manager. :meth:`run` blocks the calling
    thread; to stop it from another thread, set the ``stop`` event it was given, then join
    that thread before closing.
    """

    def __init__(self, recording: Recording, *, name: str, stype: str = "EEG",
                 source_id: str | None = None, chunk_s: float = DEFAULT_CHUNK_S,
                 rate_factor: float = 1.0, loop: bool = False,
                 index_channel: int | None = None, linger_s: float = 0.5,
                 markers: bool = True, marker_lead_s: float = 0.0) -> None:
        if not (math.isfinite(rate_factor) and rate_factor > 0):
            raise ConfigError(f"rate_factor must be > 0, got {rate_factor!r}",
                              "use 1.0 for real time, > 1 to play faster")
        if recording.n_samples < 1:
            raise ConfigError("the recording to replay has no samples",
                              "choose a longer recording or segment")
        if index_channel is not None and not 0 <= index_channel < recording.n_channels:
            raise ConfigError(f"index_channel {index_channel} is outside the recording's "
                              f"{recording.n_channels} channels",
                              f"use 0..{recording.n_channels - 1} or no index channel")
        if not name:
            raise ConfigError("the LSL stream name is empty", "give the stream a name")
        self.recording = recording
        self.name = name
        self.stype = stype
        self.source_id = source_id if source_id is not None else f"rtdecode-player:{name}"
        self.rate_factor = float(rate_factor)
        self.push_rate_hz = recording.fs * self.rate_factor
        self.chunk_samples = chunk_samples_for(self.push_rate_hz, chunk_s)
        self.loop = bool(loop)
        self.index_channel = index_channel
        self.linger_s = max(0.0, float(linger_s))
        #: Samples pushed since :meth:`open` (all runs); the next index-channel value.
        self.n_pushed = 0
        #: Largest lateness of the last run, s.
        self.max_lateness_s = 0.0
        self._outlet: pylsl.StreamOutlet | None = None
        marks = recording.meta.get("markers") if markers else None
        self.markers: MarkerOutlet | None = None
        if marks is not None and len(marks[1]):
            self.markers = MarkerOutlet(f"{name}-markers", f"{self.source_id}-markers")
            self._marker_at = np.round(np.asarray(marks[0], np.float64) * recording.fs).astype(np.int64)
            self._marker_labels = [str(m) for m in marks[1]]
            self._marker_lead = int(round(marker_lead_s * self.push_rate_hz))

    # ------------------------------------------------------------------ lifecycle
    def stream_info(self) -> pylsl.StreamInfo:
        """The ``StreamInfo`` the outlet is created with (channel labels and units in desc)."""
        rec = self.recording
        info = pylsl.StreamInfo(self.name, self.stype, rec.n_channels, rec.fs,
                                pylsl.cf_float32, self.source_id)
        units = rec.meta.get("units", {}).get("x", "") if isinstance(rec.meta.get("units"),
                                                                      dict) else ""
        channels = info.desc().append_child("channels")
        for i, label in enumerate(rec.channel_names):
            ch = channels.append_child("channel")
            if i == self.index_channel:
                ch.append_child_value("label", "sample_index")
                ch.append_child_value("unit", "samples")
                ch.append_child_value("type", "index")
            else:
                ch.append_child_value("label", str(label))
                ch.append_child_value("unit", str(units))
                ch.append_child_value("type", self.stype)
        extra = info.desc().append_child("rtdecode")
        extra.append_child_value("producer", "rtdecode.sources.player")
        extra.append_child_value("rate_factor", repr(self.rate_factor))
        extra.append_child_value("file", str(rec.meta.get("file", "")))
        if self.index_channel is not None:
            extra.append_child_value("index_channel", str(self.index_channel))
        return info

    def open(self) -> Player:
        """Create the LSL outlet (idempotent). Returns ``self``."""
        if self._outlet is None:
            try:
                self._outlet = pylsl.StreamOutlet(self.stream_info(),
                                                  chunk_size=0, max_buffered=360)
            except Exception as err:  # liblsl raises RuntimeError / OSError variants
                raise SourceError(f"cannot create LSL outlet {self.name!r}: {err}",
                                  "check the LSL configuration (LSLAPICFG) and free ports") \
                    from err
            if self.markers is not None:
                self.markers.open()
            self.n_pushed = 0
            logger.info("LSL outlet %r open: %d ch at %g Hz nominal, pushing at %g Hz in "
                        "chunks of %d", self.name, self.recording.n_channels,
                        self.recording.fs, self.push_rate_hz, self.chunk_samples)
        return self

    def close(self) -> None:
        """Destroy the outlet (idempotent)."""
        outlet, self._outlet = self._outlet, None
        if outlet is not None:
            linger_before_destroy([outlet], self.linger_s, self.n_pushed > 0)
            if self.markers is not None:
                self.markers.close()
            del outlet
            logger.info("LSL outlet %r closed after %d samples", self.name, self.n_pushed)

    @property
    def is_open(self) -> bool:
        """Whether the outlet exists."""
        return self._outlet is not None

    def _require_outlet(self) -> pylsl.StreamOutlet:
        if self._outlet is None:
            raise SourceError(f"player {self.name!r} is not open",
                              "call open() (or use `with Player(...)`) before this")
        return self._outlet

    def wait_for_consumers(self, timeout_s: float, markers: bool = False) -> bool:
        """Block until a consumer connects or ``timeout_s`` passes; True if one is connected.

        With ``markers`` (and a marker outlet), then also wait, within the same time, for a
        consumer of the markers, so that the first markers are not pushed before anyone listens.
        """
        end = time.monotonic() + float(timeout_s)
        ok = bool(self._require_outlet().wait_for_consumers(float(timeout_s)))
        if ok and markers and self.markers is not None and self.markers.outlet is not None:
            ok = bool(self.markers.outlet.wait_for_consumers(max(0.0, end - time.monotonic())))
        return ok

    def have_consumers(self) -> bool:
        """Whether a consumer is connected now."""
        return bool(self._require_outlet().have_consumers())

    # ------------------------------------------------------------------ playback
    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> int:
        """Push the recording, paced at ``fs * rate_factor``; returns the samples pushed.

        Parameters
        ----------
        stop : threading.Event, optional
            Playback ends (after the current chunk) once it is set.
        duration_s : float, optional
            Push at most ``round(duration_s * fs * rate_factor)`` samples (wall-clock
            seconds of playback). Without it, playback ends after the last sample, or never
            when looping.

        Returns
        -------
        int
            Samples pushed by this call.

        Notes
        -----
        Sample ``i`` of this run carries the timestamp ``t0 + i / (fs * rate_factor)``
        (``t0`` = ``pylsl.local_clock()`` at the start) and is pushed once that time has
        passed, in chunks of ``chunk_samples``.
        """
        outlet = self._require_outlet()
        rec = self.recording
        n_rec, n_ch = rec.n_samples, rec.n_channels
        limit = math.inf if self.loop else n_rec
        if duration_s is not None:
            limit = min(limit, max(0, int(round(duration_s * self.push_rate_hz))))
        chunk = self.chunk_samples
        buf = np.empty((chunk, n_ch), dtype=np.float32)
        ramp = np.arange(chunk, dtype=np.float64)
        stamps = np.empty(chunk, dtype=np.float64)
        x = rec.x
        k = self.index_channel
        pacer = Pacer(self.push_rate_hz, chunk)
        t0 = pacer.start()
        marks = self._marker_schedule()
        logger.info("replay %r started: %s samples at %g Hz (x%g)%s", self.name,
                    "unbounded" if math.isinf(limit) else int(limit), self.push_rate_hz,
                    self.rate_factor, ", looping" if self.loop else "")
        i = 0
        pos = 0
        try:
            while i < limit and not (stop is not None and stop.is_set()):
                n = int(min(chunk, limit - i))
                pos = copy_looped(buf[:n], x, pos)
                if k is not None:  # the running sample index, modulo 2**24
                    np.mod(ramp[:n] + self.n_pushed, INDEX_MODULUS, out=buf[:n, k], casting="unsafe")
                np.add(ramp[:n], i, out=stamps[:n])
                stamps[:n] /= self.push_rate_hz
                stamps[:n] += t0
                pacer.wait_until(pacer.sample_time(i + n), stop)
                if stop is not None and stop.is_set():
                    break
                outlet.push_chunk(buf[:n], stamps[:n].tolist())
                i += n
                self.n_pushed += n
                if marks is not None:
                    self._push_markers(marks, i, pacer)
            if i >= n_rec and not self.loop:
                self._push_late_markers(marks, pacer, stop)
        finally:
            self.max_lateness_s = pacer.max_lateness_s
            logger.info("replay %r stopped after %d samples (%d late chunks, max lateness "
                        "%.1f ms)", self.name, i, pacer.n_late, 1e3 * pacer.max_lateness_s)
        return i

    def _marker_schedule(self) -> MarkerSchedule | None:
        if self.markers is None:
            return None
        return MarkerSchedule(self._marker_at, self._marker_labels, self._marker_lead,
                              self.recording.n_samples if self.loop else None)

    def _push_late_markers(self, marks: MarkerSchedule | None, pacer: Pacer,
                           stop: threading.Event | None) -> None:
        """Markers at or past the last sample: pushed at their own times (samples never come)."""
        if marks is None or self.markers is None or (stop is not None and stop.is_set()):
            return
        for index, label in marks.rest():
            pacer.wait_until(pacer.sample_time(index - marks.lead), stop)
            if stop is not None and stop.is_set():
                return
            self.markers.push(label, pacer.sample_time(index))

    def _push_markers(self, marks: MarkerSchedule, pushed: int, pacer: Pacer) -> None:
        """Push the markers due once ``pushed`` samples are out, stamped with their sample's time."""
        assert self.markers is not None
        for index, label in marks.due(pushed):
            self.markers.push(label, pacer.sample_time(index))
