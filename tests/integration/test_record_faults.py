"""Recording faults: a stalled writer never blocks the loop, and kill -9 leaves a readable file.

The stalled disk is a writer process that stops being scheduled (SIGSTOP: what a write hung
in the kernel looks like to the daemon). LSL, ZeroMQ, ONNX Runtime, h5py, the writer process
and the daemon's loop are real; nothing is faked.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import load_config
from rtdecode.record.reader import read_session
from rtdecode.service.daemon import Daemon
from rtdecode.service.telemetry import STAGE_TICK, StageTimer
from rtdecode.sinks.protocol import Message
from tests.faultkit import Producer, collect, serve, stop, subscriber, wait_status, write_config
from tests.modelfactory import linear_model

pytest.importorskip("h5py")

RATE = 500.0


def _cfg(tmp_path: Path, name: str, endpoint: str, record: str) -> Path:
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3, identity_channel=0)
    return write_config(tmp_path / "serve.toml", name=name, model=model, endpoint=endpoint,
                        source=f"channels = 4\nrate_hz = {RATE}\nindex_channel = 0",
                        service='on_behind = "none"',  # every sample served, even on a loaded machine
                        extra=f'[record]\ndir = "{tmp_path / "sessions"}"\n{record}\n')


def test_stalled_writer_overflows_counted_and_the_loop_keeps_publishing(
        tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    # a queue of 50 kB: about 1 s of this stream (chunks + frames) before it overflows
    cfg = load_config(_cfg(tmp_path, unique_name, ipc_endpoint, "queue_mb = 0.05\nflush_interval_s = 0.2"))
    stop_ev = threading.Event()
    daemon = Daemon(cfg, stop_ev)
    th = threading.Thread(target=daemon.run, daemon=True)
    msgs: list[Message] = []
    producer = None
    stopped = False
    writer_pid = 0
    with subscriber(ipc_endpoint, "dec") as sub:
        th.start()
        try:
            wait_status(sub, lambda s: s["state"] == "starting")
            producer = Producer(unique_name, chunk=5).start(wait_consumer_s=30)
            collect(sub, lambda: len(msgs) >= 200, 30, msgs)
            assert daemon.plugins[0].wait_ready()  # type: ignore[attr-defined]
            writer_pid = daemon._status()["record"]["writer_pid"]
            assert writer_pid > 0  # (0 would signal this test's own process group)
            # the disk work runs only on idle CPU time (record.writer_priority = "idle", the default)
            assert os.sched_getscheduler(writer_pid) == os.SCHED_IDLE
            os.kill(writer_pid, signal.SIGSTOP)  # the disk hangs
            stopped = True
            assert daemon.pipeline is not None and isinstance(daemon.timer, StageTimer)
            out0, in0 = daemon.outbox.fresh, daemon.inlet.samples_in
            ticks0 = daemon.timer.hists[STAGE_TICK].total
            # 3 s of input with the disk stalled, then the input stops and the loop goes idle
            collect(sub, lambda: daemon.inlet.samples_in - in0 >= 1500, 60, msgs)
            producer.close()
            collect(sub, lambda: False, 1.0, msgs)
            out1, in1 = daemon.outbox.fresh, daemon.inlet.samples_in
            ticks1 = daemon.timer.hists[STAGE_TICK].total
            st = daemon._status()["record"]
            os.kill(writer_pid, signal.SIGCONT)
            stopped = False
        finally:
            if stopped:
                os.kill(writer_pid, signal.SIGCONT)
            if producer is not None:
                producer.close()
            stop_ev.set()
            th.join(30)
        # while the writer was stalled the loop ran on: every sample that came in was decoded and
        # published (one estimate per sample), over hundreds of loop iterations
        assert in1 - in0 >= 1500 and out1 - out0 >= 1400
        assert out1 == in1  # input idle again: every sample that came in was published
        assert ticks1 - ticks0 >= 100
        seq = np.array([m.seq for m in msgs])
        np.testing.assert_array_equal(np.diff(seq), 1)  # nothing lost on the wire either
        # the queue filled up and overflowed, and that was counted, not hidden
        assert st["queued_mb"] > 0.9 * st["queue_mb"]
        assert st["dropped"]["frames"] > 0 and st["dropped"]["chunks"] > 0
        assert st["dropped"]["samples"] >= st["dropped"]["chunks"]
    summary = daemon.summary["record"]
    s = read_session(sorted((tmp_path / "sessions").glob("*.h5")))
    assert s.dropped == summary["dropped"] and not s.complete
    # what was written plus what was dropped is everything the daemon served
    assert s.samples.shape[0] + s.dropped["samples"] == daemon.inlet.samples_in
    assert s.samples.shape[0] == daemon.plugins[0].status()["written"]["samples"]
    np.testing.assert_array_equal(np.diff(s.samples[:, 0])[np.diff(s.samples[:, 0]) != 1] > 1, True)


@pytest.mark.parametrize("victims", ["daemon_and_writer", "daemon"])
def test_kill_9_leaves_a_readable_file_missing_at_most_the_flush_interval(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, victims: str) -> None:
    """SIGKILL both processes (a crash of the machine's user space, the OOM killer): the file
    keeps its last flush. SIGKILL the daemon alone: its writer notices, writes what was queued
    and closes the file properly."""
    flush_s = 0.5
    cfg = _cfg(tmp_path, unique_name, ipc_endpoint, f"flush_interval_s = {flush_s}")
    producer = None
    daemon = serve(cfg)
    try:
        with subscriber(ipc_endpoint, "dec") as sub:
            wait_status(sub, lambda s: s["state"] == "starting")
            producer = Producer(unique_name, chunk=5).start(wait_consumer_s=30)
            st = wait_status(sub, lambda s: s.get("record", {}).get("written", {}).get("samples", 0) >= 1500,
                             timeout_s=60)
        writer_pid = st["record"]["writer_pid"]
        assert writer_pid > 0
        daemon.send_signal(signal.SIGKILL)
        if victims == "daemon_and_writer":
            os.kill(writer_pid, signal.SIGKILL)
        daemon.wait(10)
        # samples pushed before the kill (the daemon had them within a few ms)
        pushed = producer.i
    finally:
        if producer is not None:
            producer.close()
        stop(daemon)
    assert daemon.returncode == -signal.SIGKILL
    if victims == "daemon":  # the orphaned writer finishes the file and exits by itself
        for _ in range(600):
            try:
                os.kill(writer_pid, 0)
            except ProcessLookupError:
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("the writer process did not exit after the daemon died")
    files = sorted((tmp_path / "sessions").glob("*.h5"))
    s = read_session(files)  # opens although the writer never closed it
    n = s.samples.shape[0]
    np.testing.assert_array_equal(s.samples[:, 0], np.arange(n, dtype=np.float32))  # consistent prefix
    assert s.index.size > 0 and s.statuses()
    est = s.estimates("dec")
    np.testing.assert_array_equal(est["values"][:, 0], s.samples[: est["seq"].size, 0])
    lost_s = (pushed - n) / RATE
    # at most the flush interval, plus the queue's drain period and transport (loaded machine: 1 s)
    assert lost_s <= flush_s + 1.0, f"lost {lost_s:.2f} s of input"
    if victims == "daemon":  # closed properly: a plain (non-SWMR) open works too
        import h5py

        with h5py.File(files[-1], "r") as f:
            assert f["input/samples"].shape[0] == n
