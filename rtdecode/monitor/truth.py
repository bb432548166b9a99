"""Ground truth for the monitor: a second LSL stream (the demo simulator's kinematics)."""

from __future__ import annotations

import logging
import threading

import numpy as np

from rtdecode.errors import SourceError
from rtdecode.lsl import channel_labels, pylsl
from rtdecode.monitor.hub import Hub

logger = logging.getLogger(__name__)


class TruthReader:
    """Pull an LSL stream (clock-synced) into the hub from a background thread.

    Parameters
    ----------
    name : str
        LSL stream name (e.g. ``NAME-kinematics`` of ``rtdecode simulate cortex``).
    hub : Hub
    resolve_timeout_s : float
    """

    def __init__(self, name: str, hub: Hub, resolve_timeout_s: float = 30.0) -> None:
        self.name = name
        self.hub = hub
        self.resolve_timeout_s = resolve_timeout_s
        self.samples = 0
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> TruthReader:
        """Resolve and pull in a thread until ``stop`` is set (not found: logged, no truth)."""
        self._thread = threading.Thread(target=self._run, args=(stop,), name="rtdecode-monitor-truth",
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self, stop: threading.Event) -> None:
        found = pylsl.resolve_bypred(f"name='{self.name}'", 1, self.resolve_timeout_s)
        if not found:
            logger.warning("ground-truth stream %r not found within %g s; no truth shown",
                           self.name, self.resolve_timeout_s)
            return
        inlet = pylsl.StreamInlet(found[0], max_buflen=30, processing_flags=pylsl.proc_clocksync)
        try:
            full = inlet.info(timeout=10.0)
            self.hub.truth_names = channel_labels(full)
            inlet.open_stream(timeout=10.0)
            while not stop.is_set():
                x, ts = inlet.pull_chunk(timeout=0.1, max_samples=4096)
                if ts:
                    self.hub.feed_truth(np.asarray(ts), np.asarray(x, np.float64))
                    self.samples += len(ts)
        except (pylsl.util.LostError, pylsl.util.TimeoutError, SourceError) as exc:
            logger.warning("ground-truth stream %r: %s", self.name, exc)
        finally:
            inlet.close_stream()

    def join(self, timeout_s: float = 2.0) -> None:
        """Wait for the thread to end (after ``stop`` was set)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
