"""Simulator outlets over real LSL on loopback: both streams resolvable, equal timestamps."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from rtdecode.commands import simulate
from rtdecode.lsl import pylsl
from rtdecode.sources.simulator import DEFAULT_SUBJECT, CortexSimulator, SimulatorOutlets

TIMEOUT_S = 10.0


def _connect(name: str) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("name", name, 1, TIMEOUT_S)
    assert found, f"stream {name!r} not found within {TIMEOUT_S} s"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60, processing_flags=0, recover=False)
    inlet.open_stream(TIMEOUT_S)
    return inlet


def _pull(inlet: pylsl.StreamInlet, n: int) -> tuple[np.ndarray, np.ndarray]:
    data, stamps = [], []
    got = 0
    deadline = time.monotonic() + TIMEOUT_S
    while got < n and time.monotonic() < deadline:
        d, t = inlet.pull_chunk(timeout=0.1, max_samples=4096)
        if t:
            data.append(np.asarray(d, dtype=np.float64))
            stamps.append(np.asarray(t))
            got += len(t)
    return np.concatenate(data), np.concatenate(stamps)


def test_two_outlets_equal_timestamps(unique_name: str) -> None:
    sim = CortexSimulator(n_neurons=16, rate_hz=1000.0, seed=9)
    n = 300
    with SimulatorOutlets(sim, unique_name) as outlets:
        spikes_in = _connect(unique_name)
        kin_in = _connect(f"{unique_name}-kinematics")
        try:
            info = spikes_in.info(TIMEOUT_S)
            kinfo = kin_in.info(TIMEOUT_S)
            assert info.type() == "Spikes" and info.channel_count() == 16
            assert kinfo.type() == "Kinematics" and kinfo.channel_count() == 4
            assert kinfo.nominal_srate() == info.nominal_srate() == 1000.0
            assert outlets.wait_for_consumers(TIMEOUT_S)
            assert outlets.run(duration_s=n / sim.rate_hz) == n
            spikes, t_spikes = _pull(spikes_in, n)
            kin, t_kin = _pull(kin_in, n)
        finally:
            spikes_in.close_stream()
            kin_in.close_stream()
    np.testing.assert_array_equal(t_spikes, t_kin)
    np.testing.assert_allclose(np.diff(t_spikes), 1e-3, atol=1e-9)
    ref_spikes, ref_kin = CortexSimulator(n_neurons=16, rate_hz=1000.0, seed=9).generate(n)
    np.testing.assert_array_equal(spikes, ref_spikes)
    np.testing.assert_array_equal(kin, ref_kin.astype(np.float64))


def test_simulate_command_bounded_run(unique_name: str) -> None:
    parser = argparse.ArgumentParser()
    simulate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", "cortex", "--neurons", "8", "--name", unique_name,
                              "--seed", "1", "--seconds", "0.4", "--wait-consumer-s",
                              str(TIMEOUT_S)])
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", args.func(args)),
                              daemon=True)
    thread.start()
    inlet = _connect(unique_name)
    try:
        data, _ = _pull(inlet, 400)
    finally:
        inlet.close_stream()
    thread.join(TIMEOUT_S)
    assert result["rc"] == 0
    assert data.shape == (400, 8)
    # the command simulates the default subject (the shipped model's) with --seed's trajectory
    ref, _ = CortexSimulator(n_neurons=8, seed=1, subject_seed=DEFAULT_SUBJECT).generate(400)
    np.testing.assert_array_equal(data, ref)


_SCRIPT = """
import argparse, sys
from rtdecode.commands import simulate
parser = argparse.ArgumentParser()
simulate.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_simulate_command_stops_cleanly_on_sigterm(unique_name: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, "simulate", "cortex", "--name",
                             unique_name, "--neurons", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        found = pylsl.resolve_byprop("name", unique_name, 1, TIMEOUT_S)
        assert found, "the simulator did not come up"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"pushed" in err
