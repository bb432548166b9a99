"""A signal handler sets the stop event without deadlocking the thread it interrupted.

Python runs a handler in the main thread between two bytecodes, possibly while that thread
holds the stop event's internal lock inside ``Event.wait`` (a paced replay waits on it every
chunk). Calling ``Event.set()`` there waits for that lock for ever; a looping ``rtdecode
replay`` twice ignored SIGTERM in CI that way. The state a handler can interrupt is produced
here directly: this thread holds the event's lock while the setter runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from rtdecode.sources.pacing import set_from_handler, stop_on_signals


def test_the_setter_does_not_wait_for_the_event_lock() -> None:
    ev = threading.Event()
    caller = threading.Thread(target=set_from_handler, args=(ev,))
    with ev._cond:  # what the main thread holds inside ev.wait() when a signal arrives
        caller.start()
        caller.join(1.0)  # ev.set() would wait here until the lock is free (in a handler: for ever)
        assert not caller.is_alive(), "the setter waited for the event's lock"
        assert not ev.is_set()
    assert ev.wait(5.0)  # set as soon as the lock is free


def test_sigterm_during_a_paced_wait_ends_it() -> None:
    """The real handler, a real SIGTERM, this (main) thread blocked in the stop event's wait."""
    stop = threading.Event()
    with stop_on_signals(stop):
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        t0 = time.monotonic()
        assert stop.wait(10.0), "the stop event was not set"
        assert time.monotonic() - t0 < 5.0
