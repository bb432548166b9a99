"""LSL inlet: resolve a stream, check it against the config, pull chunks into preallocated buffers.

Timestamps are put on the local LSL clock (``proc_clocksync``). Gaps are found
from timestamps against the nominal rate and, when the stream carries a sample
index (``replay --index-channel``), counted exactly from the index itself.

Reconnection: the inlet is opened with liblsl's ``recover=True``, so an outlet that
comes back with the same ``source_id`` is picked up by liblsl itself. A restarted rig
whose outlet has another ``source_id`` (or none) is not: for that the inlet keeps the
:class:`pylsl.ContinuousResolver` it found the stream with, and :meth:`LslInlet.poll_reconnect`
(called by the daemon while the input is silent) connects to a *new* outlet that matches
the configured name / type / source_id — after checking it has the same channel count,
format and rate as the stream the decoders were built for — in a background thread, so
the daemon keeps publishing its safe values meanwhile.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rtdecode.config import SourceConfig
from rtdecode.errors import SourceError
from rtdecode.lsl import NUMERIC_DTYPES, pylsl, streams_seen, warn_large_pool
from rtdecode.resource import Resource
from rtdecode.sources.stream_choice import FORMAT_NAMES, Layout, choose, describe, misfit, report
from rtdecode.types import Chunk, Flags

logger = logging.getLogger(__name__)


def stream_predicate(sel: Any, section: str) -> str:
    """The liblsl XPath predicate of a stream selector (``name`` / ``type`` / ``source_id``).

    ``sel`` is any config section with those three fields; ``section`` names it in errors
    (``"source"``, ``"tms.markers"``).
    """
    parts = []
    for key, val in (("name", sel.name), ("type", sel.type), ("source_id", sel.source_id)):
        if val:
            if "'" in val:
                raise SourceError(f"{section}.{key} contains a quote: {val!r}", "remove the quote")
            parts.append(f"{key}='{val}'")
    return " and ".join(parts)


def visible_streams(timeout_s: float = 0.5) -> list[str]:
    """One line per LSL stream visible on this machine (for error messages and doctor)."""
    out = []
    for info in streams_seen(timeout_s):
        out.append(f"{info.name()} (type {info.type()}, {info.channel_count()} ch, "
                   f"{info.nominal_srate():g} Hz, {FORMAT_NAMES.get(info.channel_format(), '?')}, "
                   f"source_id {info.source_id()!r})")
    return out


#: A resolved outlet is forgotten this long after it stops answering, s.
_FORGET_AFTER_S = 2.0
#: Period of the look for a new outlet while stale, s.
_LOOK_EVERY_S = 0.1
#: Longest wait for a new outlet's clock offset / stream open during a reconnect, s.
_RECONNECT_TIMEOUT_S = 5.0


def _connect(info: pylsl.StreamInfo, cfg: SourceConfig, timeout_s: float,
             start: bool = True) -> tuple[pylsl.StreamInlet, pylsl.StreamInfo]:
    """Open a clock-synced, recovering inlet on ``info``; returns (inlet, full info). With
    ``start`` the data starts to flow into it now (else at ``open_stream`` or the first pull)."""
    inlet = pylsl.StreamInlet(info, max_buflen=cfg.buffer_s, max_chunklen=0, recover=True,
                              processing_flags=pylsl.proc_clocksync)
    full = inlet.info(timeout=timeout_s)
    warn_large_pool(full)
    # Prime the clock-offset estimate before data flows: with proc_clocksync the first
    # pull otherwise waits for it (measured ~0.6 s), and the first chunk arrives stale.
    try:
        offset = inlet.time_correction(timeout=timeout_s)
        logger.info("clock offset to %s: %.3f ms", info.name(), offset * 1e3)
    except pylsl.util.TimeoutError:
        logger.warning("no clock-offset estimate from %s yet; timestamps uncorrected at first",
                       info.name())
    if start:
        inlet.open_stream(timeout=timeout_s)
    return inlet, full


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_freed_memory() -> None:
    """Give the heap pages freed by a closed liblsl inlet back to the OS (glibc only).

    Each liblsl inlet allocates its sample buffers and threads; when an old inlet is destroyed
    glibc keeps the freed pages in its heap. In a loop that creates and destroys 256-channel
    inlets, ``malloc_trim(0)`` keeps the resident memory flat (after 8 cycles: 38.6 MB with it,
    58.7 MB without; an ad-hoc check, not a committed benchmark).
    It does not explain all of the growth the soak benchmark shows at reconnections (see
    docs/reliability.md). Called when the inlet switches to a new outlet, never per tick.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _resident(shape: tuple[int, int], dtype: Any) -> np.ndarray:
    """A zeroed pull buffer whose pages are all resident.

    ``np.zeros`` maps its pages lazily: the first pull that reaches a row takes a page fault
    per 4 kB, and a catch-up pull after a stall reaches rows no steady pull has touched (at
    1,024 channels one float32 sample is one page). On the 2-core VM such first-touch faults
    made liblsl's copy of a backlog no faster than the stream arrived: 38.9 ms to drain 1,169
    samples, against 1.1 ms for 1,199 samples into a buffer written once at open (the iBCI
    benchmark's e2e p99 came from these drains; docs/performance.md). The cost is the buffer
    kept resident: ``max_chunk_samples`` × channels × 4 bytes (32 MB at 1,024 channels).
    """
    buf = np.empty(shape, dtype=dtype)
    buf.fill(0)
    return buf


class _Connect:
    """Connect to a new outlet in a background thread (``done`` is set when finished)."""

    def __init__(self, info: pylsl.StreamInfo, cfg: SourceConfig) -> None:
        self.info = info
        self.uid = info.uid()
        self.cfg = cfg
        self.t_start = time.monotonic()
        self.inlet: pylsl.StreamInlet | None = None
        self.info_full: pylsl.StreamInfo | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._cancelled = threading.Event()
        threading.Thread(target=self._run, name="rtdecode-reconnect", daemon=True).start()

    def _run(self) -> None:
        try:
            inlet, full = _connect(self.info, self.cfg, _RECONNECT_TIMEOUT_S)
        except Exception as exc:  # liblsl TimeoutError / LostError / RuntimeError
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            if self._cancelled.is_set():
                inlet.close_stream()
            else:
                self.inlet, self.info_full = inlet, full
        self.done.set()

    def cancel(self) -> None:
        """The caller no longer wants this connection; it is closed when made."""
        self._cancelled.set()
        if self.done.is_set() and self.inlet is not None:
            self.inlet.close_stream()
            self.inlet = None


class LslInlet(Resource):
    """A checked LSL inlet with preallocated pull buffers and gap accounting.

    Parameters
    ----------
    cfg : SourceConfig
        Which stream, what to expect, buffer sizes.

    Attributes
    ----------
    n_channels : int
    rate_hz : float
        Nominal rate of the stream, Hz.
    samples_in, gaps, missing_samples, index_lost, index_dup, time_jumps : int
        Counters since ``open()`` (``missing_samples`` includes outages: the timestamp step
        across an outage is a gap).
    reconnects, reconnect_rejected : int
        Switches to a new outlet; new outlets refused because they do not match.
    """

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self.inlet: pylsl.StreamInlet | None = None
        self.info: pylsl.StreamInfo | None = None
        self.n_channels = 0
        self.rate_hz = 0.0
        self._raw: np.ndarray | None = None
        self._buf: np.ndarray | None = None
        self._last_t: float | None = None
        self._last_index: float | None = None
        self.samples_in = 0
        self.gaps = 0
        self.missing_samples = 0
        self.index_lost = 0
        self.index_dup = 0
        self.time_jumps = 0
        self.reconnects = 0
        self.reconnect_rejected = 0
        self.last_rejection: str | None = None
        self._resolver: pylsl.ContinuousResolver | None = None
        self._known_uids: set[str] = set()
        self._pending: _Connect | None = None
        self._next_look = 0.0
        #: The current outlet is gone for good (liblsl LostError); cleared by a reconnect.
        self.lost = False

    # -- lifecycle -------------------------------------------------------
    def open(self, stop: threading.Event | None = None,
             on_wait: Callable[[], None] | None = None,
             layouts: Sequence[Layout] = (), start: bool = True) -> LslInlet:
        """Resolve the stream, choose among matching outlets by layout, open the inlet.

        Parameters
        ----------
        stop : threading.Event, optional
            Checked between short resolve attempts, so a shutdown request during
            start-up is honoured within ~0.25 s.
        on_wait : callable, optional
            Called between resolve attempts (the daemon keeps its heartbeat going).
        layouts : sequence of Layout
            What the consumers (the models) need besides ``source.channels`` / ``rate_hz``:
            outlets that do not fit are not chosen (:mod:`rtdecode.sources.stream_choice`).
        start : bool
            Let the data flow now; False leaves that to :meth:`start` (or the first pull), so
            that what a consumer builds after learning the stream's layout does not leave a
            backlog of samples queued while it built.
        """
        cfg = self.cfg
        pred = stream_predicate(cfg, "source")
        logger.info("resolving LSL stream %s (timeout %.1f s)", pred, cfg.resolve_timeout_s)
        resolver = pylsl.ContinuousResolver(pred=pred, forget_after=_FORGET_AFTER_S)
        need = [Layout(cfg.channels, cfg.rate_hz, "the config", "source.channels", "source.rate_hz"),
                *layouts]
        info, found = self._resolve(resolver, pred, need, stop, on_wait)
        self.inlet, self.info = _connect(info, cfg, cfg.resolve_timeout_s, start)
        self._known_uids = {r.uid() for r in found}
        # A continuous resolver keeps its query waves going in the background; it is kept
        # open afterwards to find a restarted rig (poll_reconnect).
        self._resolver = resolver if cfg.reconnect else None
        self.n_channels = info.channel_count()
        self.rate_hz = info.nominal_srate()
        dtype = NUMERIC_DTYPES[info.channel_format()]
        self._raw = _resident((cfg.max_chunk_samples, self.n_channels), dtype)
        self._buf = (self._raw if dtype == np.float32
                     else _resident((cfg.max_chunk_samples, self.n_channels), np.float32))
        logger.info("opened LSL stream %s", describe(info))
        return self

    def start(self) -> None:
        """Let the data flow into the inlet opened with ``open(start=False)`` (idempotent)."""
        if self.inlet is None:
            raise SourceError("inlet is not open", "call open() first")
        self.inlet.open_stream(timeout=self.cfg.resolve_timeout_s)

    def _resolve(self, resolver: pylsl.ContinuousResolver, pred: str, need: Sequence[Layout],
                 stop: threading.Event | None, on_wait: Callable[[], None] | None
                 ) -> tuple[pylsl.StreamInfo, list[pylsl.StreamInfo]]:
        """Wait for a matching outlet, then keep gathering them for ``source.choose_window_s``.

        Returns (the chosen outlet, every matching outlet seen). Raises SourceError when none
        of them fits (naming each and why), when none appears within ``source.resolve_timeout_s``,
        or when ``stop`` is set first.
        """
        cfg = self.cfg
        deadline = time.monotonic() + cfg.resolve_timeout_s
        chosen: pylsl.StreamInfo | None = None
        found: list[pylsl.StreamInfo] = []
        rejected: list[tuple[pylsl.StreamInfo, str]] = []
        seen_since = math.inf
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            time.sleep(0.05)
            found = resolver.results()
            if found:
                seen_since = min(seen_since, time.monotonic())
                if time.monotonic() - seen_since >= cfg.choose_window_s:
                    chosen, rejected = choose(found, need, cfg.rate_tolerance)
                    break
            if on_wait is not None:
                on_wait()
        if chosen is not None:
            report(chosen, found, rejected, pred)
            self._check(chosen)
            return chosen, found
        if stop is not None and stop.is_set():
            raise SourceError("start-up interrupted while resolving the input stream", None)
        if rejected:
            raise SourceError(f"no LSL stream matching {pred} fits: "
                              + "; ".join(f"{describe(i)}: {why}" for i, why in rejected),
                              "start the right rig / replay, or fix source.name/type/source_id, "
                              "source.channels and source.rate_hz (or serve models made for that stream)")
        seen = visible_streams()
        raise SourceError(
            f"no LSL stream matching {pred} within {cfg.resolve_timeout_s:g} s; "
            f"visible: {seen or 'none'}",
            "start the rig / `rtdecode replay` / `rtdecode simulate`, or fix source.name/type/"
            "source_id; on a lab network set LSLAPICFG to a config that can see it",
        )

    def _check(self, info: pylsl.StreamInfo) -> None:
        cfg = self.cfg
        if cfg.index_channel is not None and cfg.index_channel >= info.channel_count():
            raise SourceError(f"source.index_channel {cfg.index_channel} is outside the stream's "
                              f"{info.channel_count()} channels", "fix source.index_channel")

    def _check_same(self, info: pylsl.StreamInfo) -> None:
        """A new outlet must look like the stream the decoders were built for."""
        assert self.info is not None
        why = misfit(info, [Layout(self.cfg.channels, self.cfg.rate_hz, "the config")],
                     self.cfg.rate_tolerance)
        if why is not None:
            raise SourceError(f"new outlet {describe(info)}: {why}",
                              "restart the rig with the stream's old layout, or restart the daemon")
        self._check(info)
        old = self.info
        what = []
        if info.channel_count() != self.n_channels:
            what.append(f"{info.channel_count()} channels instead of {self.n_channels}")
        if info.channel_format() != old.channel_format():
            what.append(f"format {FORMAT_NAMES.get(info.channel_format(), '?')} instead of "
                        f"{FORMAT_NAMES.get(old.channel_format(), '?')}")
        if abs(info.nominal_srate() - self.rate_hz) > self.cfg.rate_tolerance * self.rate_hz:
            what.append(f"{info.nominal_srate():g} Hz instead of {self.rate_hz:g} Hz")
        if what:
            raise SourceError(f"new outlet {info.name()!r} (source_id {info.source_id()!r}) has "
                              + ", ".join(what),
                              "restart the rig with the stream's old layout, or restart the daemon")

    def close(self) -> None:
        """Close the inlet (idempotent)."""
        self._resolver = None
        self.cancel_reconnect()
        if self.inlet is not None:
            try:
                self.inlet.close_stream()
            finally:
                self.inlet = None

    # -- reconnecting ----------------------------------------------------
    def poll_reconnect(self) -> bool:
        """Look for a new outlet of this source and switch to it once connected.

        Call it while no input arrives (it never blocks: a connection is made in a
        background thread). A new outlet is one whose uid this inlet has not seen; it
        must have the stream's channel count, format and rate, else it is refused (logged
        once, counted in ``reconnect_rejected``, reason in ``last_rejection``).

        Returns
        -------
        bool
            True when the inlet has just switched to a new outlet.
        """
        job = self._pending
        if job is not None:
            if not job.done.is_set():
                return False
            self._pending = None
            if job.inlet is None:
                logger.error("cannot connect to the new outlet %r (uid %s): %s", job.info.name(),
                             job.uid, job.error)
                return False
            old, self.inlet, self.info = self.inlet, job.inlet, job.info_full
            self.lost = False
            self._last_index = None  # a restarted rig restarts its index
            self.reconnects += 1
            logger.warning("switched to new LSL outlet %r (source_id %r, uid %s) after %.2f s",
                           job.info.name(), job.info.source_id(), job.uid,
                           time.monotonic() - job.t_start)
            if old is not None:
                try:
                    old.close_stream()
                except Exception as exc:  # liblsl may already have dropped it
                    logger.debug("closing the old inlet: %s", exc)
                del old  # destroys the liblsl inlet
                release_freed_memory()
            return True
        now = time.monotonic()
        if self._resolver is None or self.info is None or now < self._next_look:
            return False
        self._next_look = now + _LOOK_EVERY_S
        for info in self._resolver.results():
            uid = info.uid()
            if uid in self._known_uids:
                continue
            self._known_uids.add(uid)
            try:
                self._check_same(info)
            except SourceError as exc:
                self.reconnect_rejected += 1
                self.last_rejection = exc.what
                logger.error("not reconnecting: %s", exc)
                continue
            logger.info("new LSL outlet %r (source_id %r, uid %s): connecting", info.name(),
                        info.source_id(), uid)
            self._pending = _Connect(info, self.cfg)
            return False
        return False

    def reset_continuity(self) -> None:
        """Forget the last sample index (after an outage the rig may have restarted its count)."""
        self._last_index = None

    def cancel_reconnect(self) -> None:
        """Forget a connection in progress (input came back on the current inlet)."""
        job, self._pending = self._pending, None
        if job is not None:
            job.cancel()

    # -- pulling ---------------------------------------------------------
    def pull(self, timeout_s: float, max_samples: int | None = None) -> Chunk | None:
        """Wait up to ``timeout_s`` for the first new sample, then take all that are available.

        Parameters
        ----------
        timeout_s : float
            Longest wait, s.
        max_samples : int, optional
            Take at most this many samples (default: the buffer size).

        Returns
        -------
        Chunk or None
            ``samples`` is a view of the preallocated buffer, valid until the next pull.
        """
        if self.inlet is None or self._raw is None or self._buf is None:
            raise SourceError("inlet is not open", "call open() first")
        cap = self._raw.shape[0] if max_samples is None else min(max_samples, self._raw.shape[0])
        if self.lost:  # nothing will come from this inlet again: wait as a pull would
            time.sleep(timeout_s)
            return None
        try:
            ts = self._wait_and_pull(timeout_s, cap)
        except pylsl.util.LostError as exc:
            # An outlet without a source_id cannot be recovered by liblsl: the daemon goes
            # stale and poll_reconnect() switches to a new outlet when one appears.
            self.lost = True
            logger.error("LSL stream %r was lost (%s; it has no source_id, so liblsl cannot "
                         "recover it); waiting for a new outlet", self.cfg.name, exc)
            return None
        except (pylsl.util.InternalError, RuntimeError) as exc:
            # liblsl failed inside the pull: this inlet cannot be trusted any more; the daemon
            # goes stale (safe values) and poll_reconnect() opens a new inlet on an outlet
            self.lost = True
            self._known_uids.clear()  # the same outlet may be reopened
            logger.error("LSL pull from %r failed inside liblsl (%s: %s); dropping this inlet and "
                         "reconnecting", self.cfg.name, type(exc).__name__, exc)
            return None
        n = len(ts)
        if n == 0:
            return None
        t = np.asarray(ts, dtype=np.float64)
        if self._buf is not self._raw:
            np.copyto(self._buf[:n], self._raw[:n], casting="unsafe")
        x = self._buf[:n]
        flags = self._account(x, t)
        chunk = Chunk(samples=x, t_lsl=t, first_index=self.samples_in, flags=flags)
        self.samples_in += n
        return chunk

    def _wait_and_pull(self, timeout_s: float, cap: int) -> np.ndarray:
        """Pull up to ``cap`` samples into ``self._raw``; spin first when ``busy_poll_s`` asks."""
        assert self.inlet is not None
        spin = min(self.cfg.busy_poll_s, timeout_s)
        if spin > 0:
            end = time.perf_counter() + spin
            while True:
                _, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=cap, dest_obj=self._raw,
                                              min_samples=1, as_numpy=True)
                if len(ts):
                    return ts
                if time.perf_counter() >= end:
                    break
            timeout_s -= spin
            if timeout_s <= 0:
                return ts
        _, ts = self.inlet.pull_chunk(timeout=timeout_s, max_samples=cap, dest_obj=self._raw,
                                      min_samples=1, as_numpy=True)
        return ts

    def _account(self, x: np.ndarray, t: np.ndarray) -> int:
        """Count gaps, time jumps and index losses of a new chunk; returns its ``Flags`` (GAP)."""
        flags = self._account_times(t)
        k = self.cfg.index_channel
        if k is not None:
            idx = x[:, k].astype(np.float64)
            prev = self._last_index if self._last_index is not None else idx[0] - 1.0
            d = np.diff(idx, prepend=prev)
            if (d != 1.0).any():
                self.index_lost += int(np.clip(d - 1.0, 0, None).sum())
                self.index_dup += int((d <= 0).sum())
                flags = int(Flags.GAP)
            self._last_index = float(idx[-1])
        return flags

    def _account_times(self, t: np.ndarray) -> int:
        """Gaps (a step over ``gap_factor`` periods) and time jumps (a step back by over half a
        period) in the stamps t float64 (n,) s, the previous chunk's last included; GAP or 0."""
        period = 1.0 / self.rate_hz
        first_dt = t[0] - self._last_t if self._last_t is not None else period
        self._last_t = float(t[-1])
        if t.shape[0] > 1:  # one pass over the steps for the common case: none is out of line
            dts = t[1:] - t[:-1]
            lo, hi = min(first_dt, float(dts.min())), max(first_dt, float(dts.max()))
        else:
            lo = hi = first_dt
        if -0.5 * period <= lo and hi <= self.cfg.gap_factor * period:
            return 0
        dts = np.diff(t, prepend=t[0] - first_dt)
        big = dts > self.cfg.gap_factor * period
        if big.any():
            self.gaps += int(big.sum())
            self.missing_samples += int(np.round(dts[big] / period).sum() - big.sum())
        back = dts < -0.5 * period
        self.time_jumps += int(back.sum())
        return int(Flags.GAP)

    def counters(self) -> dict[str, int]:
        """Input counters since open."""
        return {"samples_in": self.samples_in, "gaps": self.gaps,
                "missing_samples": self.missing_samples, "index_lost": self.index_lost,
                "index_dup": self.index_dup, "time_jumps": self.time_jumps,
                "reconnects": self.reconnects, "reconnect_rejected": self.reconnect_rejected}

    def waiting(self) -> int:
        """Samples in liblsl's buffer not pulled yet (the backlog), 0 when unknown."""
        if self.inlet is None:
            return 0
        try:
            return int(self.inlet.samples_available())
        except Exception:  # noqa: BLE001 - a lost inlet: no backlog to report
            return 0

    @property
    def last_t(self) -> float:
        """LSL time of the newest sample pulled so far, s (NaN before the first)."""
        return self._last_t if self._last_t is not None else float("nan")
