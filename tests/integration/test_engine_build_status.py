"""The daemon's start-up status says "building TensorRT engine" with the elapsed time.

A real daemon (its own thread) binds a real ZeroMQ socket and resolves a real LSL stream that
nobody publishes, so it stays in start-up and sends heartbeats. No TensorRT is here, so the
test marks a build in the process's engine-build tracker exactly as StreamingModel.open does
around ONNX Runtime's session creation; everything the status message goes through is real.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rtdecode.config import load_config
from rtdecode.runtime.engine_cache import ENGINE_BUILDS
from rtdecode.service.daemon import Daemon
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.protocol import STATUS_TOPIC

ROOT = Path(__file__).resolve().parents[2]


def _wait(sub: Subscriber, ok: Callable[[dict], bool], timeout_s: float = 30.0) -> dict:
    end = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < end:
        m = sub.recv(timeout_s=0.5)
        if m is not None and m.status is not None:
            seen = m.status
            if ok(seen):
                return seen
    raise AssertionError(f"no such status within {timeout_s} s (last: {seen})")


def test_status_shows_the_engine_build_and_its_elapsed_time(tmp_path: Path, unique_name: str,
                                                            ipc_endpoint: str) -> None:
    cfg_path = tmp_path / "d.toml"
    cfg_path.write_text(f'[source]\nname = "{unique_name}"\nresolve_timeout_s = 60\n'
                        f'[[decoders]]\nname = "w"\nmodel = "{ROOT / "models" / "cortex_wiener.onnx"}"\n'
                        f'[sink]\nendpoint = "{ipc_endpoint}"\nheartbeat_s = 0.1\n', encoding="utf-8")
    stop = threading.Event()
    daemon = Daemon(load_config(cfg_path, environ={}), stop)
    t = threading.Thread(target=daemon.run, name="daemon-under-test")
    with Subscriber(ipc_endpoint, topics=[STATUS_TOPIC]) as sub:
        try:
            with ENGINE_BUILDS.building("flexemg_sconvnet_c.onnx"):
                t.start()
                st = _wait(sub, lambda s: s["state"] == "starting"
                           and s["phase"].startswith("building TensorRT engine"))
                assert "flexemg_sconvnet_c.onnx" in st["phase"] and st["reason"] == st["phase"]
                assert re.search(r": \d+ s so far", st["phase"]), st["phase"]
            st = _wait(sub, lambda s: s["phase"] == "resolving the input stream")
            assert st["state"] == "starting" and "TensorRT" not in st["reason"]
        finally:
            stop.set()
            t.join(30)
    assert not t.is_alive()
