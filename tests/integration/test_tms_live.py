"""TMS events over real parts: LSL EMG + marker outlets → the daemon → a ZeroMQ subscriber.

Every pulse is published exactly once, its measures equal the offline measurement of the same
samples, pre-activation is flagged, markers before / after / without their samples and pulses
during an input outage are handled as docs/tms.md says. No timing is asserted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rtdecode.config import load_config
from rtdecode.io.readers import read_recording
from rtdecode.io.recording import Recording
from rtdecode.lsl import pylsl
from rtdecode.service.daemon import Daemon
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.event_payload import EventFlags
from rtdecode.sinks.protocol import STATUS_TOPIC, Message
from rtdecode.sources.markers import MarkerOutlet
from rtdecode.sources.player import Player
from rtdecode.tms.config import MeasureConfig, TmsConfig
from rtdecode.tms.mapping import fixed_protocol
from rtdecode.tms.measure import MepMeasurer, measure_recording
from rtdecode.tms.offline import measure_session
from rtdecode.tms.simulate import TmsOutlets, TmsSimulator
from rtdecode.tms.subject import VirtualSubject
from tests.faultkit import Producer, serve, stop, wait_status

OXFORD = "tms_mep/oxford_fdi_io/S1_Magstim_50percent.mat"
CHAIN = [{"kind": "butter", "btype": "bandpass", "order": 2, "cutoff_hz": [10.0, 500.0]}]
BAD = EventFlags.NO_SAMPLES | EventFlags.OUTAGE


@pytest.fixture(scope="module")
def subject() -> VirtualSubject:
    return VirtualSubject(0)


def _simulator(subject: VirtualSubject, n: int, **kw: Any) -> TmsSimulator:
    return TmsSimulator(subject, fixed_protocol(*subject.hotspot(), 130.0, n),
                        **{"isi_s": 1.0, "first_s": 0.5, "seed": 7, **kw})


def _config(name: str, endpoint: str, tms: dict[str, Any], stale_after_s: float = 2.0
            ) -> dict[str, Any]:
    """A TMS-only service that keeps every sample: a long stale_after_s and no skipping when
    behind, so a stall of a loaded machine is no outage (docs/tms.md)."""
    return {"source": {"name": name, "resolve_timeout_s": 30},
            "sink": {"endpoint": endpoint, "heartbeat_s": 0.2, "sndhwm": 100000},
            "service": {"stats_interval_s": 5, "stale_after_s": stale_after_s, "on_behind": "none"},
            "tms": tms}


@contextmanager
def _in_thread(run: Callable[[threading.Event], None], join_s: float) -> Iterator[None]:
    """Run ``run(stop)`` in a thread for the block; set ``stop`` and join after it; re-raise."""
    stop_ev = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(stop_ev)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop_ev.set()
        t.join(join_s)
    assert not errors, errors


def _daemon(cfg: dict[str, Any]) -> Any:
    """The daemon in a thread of this process (real LSL and ZeroMQ, no subprocess start-up)."""
    def run(stop_ev: threading.Event) -> None:
        d = Daemon(load_config(data=cfg), stop_event=stop_ev)
        d.run()

    return _in_thread(run, 15)


def _streaming(source: Any, markers: bool = True) -> Any:
    """Run a Player / TmsOutlets (open, wait for its consumers, stream) in a thread."""
    def run(stop_ev: threading.Event) -> None:
        with source:
            source.wait_for_consumers(30, markers=markers)
            source.run(stop_ev)

    return _in_thread(run, 30)


def _events(sub: Subscriber, n: int, timeout_s: float = 60.0,
            statuses: list[dict] | None = None) -> list[Message]:
    out: list[Message] = []
    end = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < end:
        m = sub.recv(0.1)
        if m is not None and m.is_event:
            out.append(m)
        elif m is not None and m.status is not None and statuses is not None:
            statuses.append(m.status)
    return out


def _assert_once_each(events: list[Message], n: int) -> None:
    assert [m.event.pulse_id for m in events] == list(range(n))  # type: ignore[union-attr]
    assert [m.seq for m in events] == list(range(n))


def test_simulator_daemon_subscriber_equals_offline(subject: VirtualSubject, tmp_path: Path,
                                                   unique_name: str, ipc_endpoint: str) -> None:
    """`rtdecode serve` (a process) measures each simulated pulse once, as the offline path does."""
    n = 6
    cfg = tmp_path / "serve.toml"
    cfg.write_text(
        f'[source]\nname = "{unique_name}"\nresolve_timeout_s = 30\n\n'
        f'[sink]\nendpoint = "{ipc_endpoint}"\nheartbeat_s = 0.2\n\n'
        '[service]\nstale_after_s = 2.0\non_behind = "none"\n\n'
        f'[tms]\n[tms.markers]\nname = "{unique_name}-markers"\n'
        "[tms.measure]\nsettle_ms = 20\n"
        'chain = [{kind = "butter", btype = "bandpass", order = 2, cutoff_hz = [10.0, 500.0]}]\n')
    sim = _simulator(subject, n, preactivation_prob=0.5)
    with Subscriber(ipc_endpoint, topics=["tms", STATUS_TOPIC]) as sub:
        proc = serve(cfg)
        try:
            wait_status(sub, lambda s: s["state"] == "starting", 60)
            assert load_config(cfg).tms.measure.chain == CHAIN  # type: ignore[union-attr]
            with _streaming(TmsOutlets(sim, unique_name)):
                statuses: list[dict] = []
                events = _events(sub, n, statuses=statuses)
                wait_status(sub, lambda s: s["tms"]["published"] == n)
        finally:
            err = stop(proc)
    assert len(events) == n, err[-3000:]
    _assert_once_each(events, n)
    offline = _simulator(subject, n, preactivation_prob=0.5).recording(sim.pulse_samples[-1] + 400)
    measurer = MepMeasurer(MeasureConfig(settle_ms=20, chain=CHAIN), 2000.0, 15, 1.0)
    expected = measure_recording(offline.x, offline.t, offline.meta["markers"][0], measurer)
    for m, exp, trial in zip(events, expected, sim.trials, strict=True):
        ev = m.event
        assert ev is not None and ev.intensity == 130.0 and ev.intensity_unit == "%RMT"
        np.testing.assert_allclose(ev.values, exp.values, rtol=1e-6, atol=1e-3)
        np.testing.assert_array_equal(ev.channel_flags, exp.channel_flags)
        assert not m.flags & BAD
        np.testing.assert_array_equal(ev.channel_flags & EventFlags.PREACTIVATED != 0,
                                      trial.preactivated)
        assert m.t_source >= ev.t_pulse + 0.05 - 0.5 / 2000  # the window's last sample (±clock sync)
    assert any(t.preactivated.any() for t in sim.trials)  # the seed gives pre-activated pulses
    assert statuses[-1]["tms"]["channels"][0] == "FDI"


def test_trigger_channel_gives_the_same_pulses(subject: VirtualSubject, unique_name: str,
                                               ipc_endpoint: str) -> None:
    n = 3
    sim = _simulator(subject, n, trigger=True, preactivation_prob=0.0)
    outlets = TmsOutlets(sim, unique_name)
    tms = {"trigger": {"channel": "TRIG", "threshold": 2.5}}
    with Subscriber(ipc_endpoint, topics=["tms"]) as sub, _daemon(_config(unique_name, ipc_endpoint, tms)):
        with _streaming(outlets, markers=False):
            events = _events(sub, n)
    _assert_once_each(events, n)
    offline = _simulator(subject, n, trigger=True, preactivation_prob=0.0).recording(
        sim.pulse_samples[-1] + 400)
    expected = measure_recording(offline.x[:, :15], offline.t, offline.meta["markers"][0],
                                 MepMeasurer(MeasureConfig(), 2000.0, 15, 1.0))
    for m, exp, k in zip(events, expected, sim.pulse_samples, strict=True):
        assert m.event is not None
        assert abs(m.event.t_pulse - (outlets.t0 + k / 2000.0)) < 0.25e-3  # the pulse sample
        np.testing.assert_allclose(m.event.values, exp.values, rtol=1e-6, atol=1e-3)


@pytest.mark.data
def test_replayed_fdi_traces_equal_the_file(shared_data: Path, unique_name: str,
                                            ipc_endpoint: str) -> None:
    """The real Oxford traces replayed (15 s) with a marker per pulse: live p2p == max − min in the file."""
    path = shared_data / OXFORD
    rec = read_recording(path)
    tms = {"units": "mV", "markers": {"name": f"{unique_name}-markers"},
           "measure": {"pre_ms": [-95.0, -5.0]}}
    with Subscriber(ipc_endpoint, topics=["tms"]) as sub, _daemon(_config(unique_name, ipc_endpoint, tms)):
        # real time: at x3 the samples are 33 µs apart, within reach of the two inlets'
        # independent clock-offset estimates, and the nearest sample may flip by one
        with _streaming(Player(rec, name=unique_name, stype="EMG")):
            events = _events(sub, 15)
    _assert_once_each(events, 15)
    import scipy.io as sio

    traces = sio.loadmat(path)["Values"].astype(np.float32)  # (10000, 15) mV
    post = traces[1200:1501]  # 20..50 ms after the pulse at sample 1000, both ends included
    direct_uv = (post.max(axis=0).astype(np.float64) - post.min(axis=0)) * 1e3
    live = np.array([m.event.values[0, 0] for m in events])  # type: ignore[union-attr]
    np.testing.assert_allclose(live, direct_uv, rtol=1e-5)
    _, offline = measure_session(rec, TmsConfig.model_validate(tms))
    for m, (_, r) in zip(events, offline, strict=True):
        np.testing.assert_allclose(m.event.values, r.values, rtol=1e-6, atol=1e-3)  # type: ignore[union-attr]
        assert m.event.intensity == 50.0 and m.event.intensity_unit == "%MSO"  # type: ignore[union-attr]


def _with_extra_marker(rec: Recording, after_end_s: float) -> Recording:
    """The recording with one more marker after its last sample (its samples never come)."""
    times, labels = rec.meta["markers"]
    extra = json.dumps({"pulse": len(labels)})
    meta = dict(rec.meta, markers=(np.append(times, rec.duration_s + after_end_s), [*labels, extra]))
    return Recording(x=rec.x, fs=rec.fs, channel_names=rec.channel_names, meta=meta)


@pytest.mark.parametrize("lead_ms", [200.0, -300.0], ids=["marker-before", "marker-after"])
def test_markers_before_after_and_without_samples(subject: VirtualSubject, unique_name: str,
                                                  ipc_endpoint: str, lead_ms: float) -> None:
    n = 3
    rec = _simulator(subject, n, preactivation_prob=0.0).recording(int(2000 * (0.5 + n)))
    player = Player(_with_extra_marker(rec, 0.2), name=unique_name, stype="EMG",
                    marker_lead_s=lead_ms / 1e3)
    tms = {"markers": {"name": f"{unique_name}-markers"}, "max_wait_s": 1.0}
    statuses: list[dict] = []
    with Subscriber(ipc_endpoint, topics=["tms", STATUS_TOPIC]) as sub, \
            _daemon(_config(unique_name, ipc_endpoint, tms)):
        with _streaming(player):
            events = _events(sub, n + 1, statuses=statuses)
            wait_status(sub, lambda s: s["tms"]["pending"] == 0 and s["tms"]["published"] == n + 1)
    _assert_once_each(events, n + 1)
    expected = measure_recording(rec.x, rec.t, rec.meta["markers"][0],
                                 MepMeasurer(MeasureConfig(), 2000.0, 15, 1.0))
    for m, exp in zip(events[:n], expected, strict=True):
        assert not m.flags & BAD
        np.testing.assert_allclose(m.event.values, exp.values, rtol=1e-6, atol=1e-3)  # type: ignore[union-attr]
    last = events[-1]
    assert last.flags & EventFlags.NO_SAMPLES and last.flags & EventFlags.OUTAGE
    assert last.event is not None and not last.event.values.any()
    assert (last.event.channel_flags & EventFlags.NO_SAMPLES).all()


def _push_marker(outlet: MarkerOutlet, pulse: int, t: float) -> None:
    outlet.push(json.dumps({"pulse": pulse}), t)


def test_pulse_during_an_input_outage_is_flagged(unique_name: str, ipc_endpoint: str) -> None:
    """A pulse inside an outage: flagged OUTAGE when input resumes; NO_SAMPLES if it never does."""
    tms = {"channels": [1, 2], "markers": {"name": f"{unique_name}-markers"}, "max_wait_s": 0.5}
    markers = MarkerOutlet(f"{unique_name}-markers").open()
    producer = Producer(unique_name, channels=3, rate_hz=1000.0, chunk=2)
    events: list[Message] = []
    try:
        with Subscriber(ipc_endpoint, topics=["tms"]) as sub, \
                _daemon(_config(unique_name, ipc_endpoint, tms, stale_after_s=0.4)):
            producer.start(wait_consumer_s=30)
            markers.outlet.wait_for_consumers(30)  # type: ignore[union-attr]
            _wait(lambda: producer.i > 600)
            _push_marker(markers, 0, pylsl.local_clock() - 0.3)  # samples all there
            events += _events(sub, 1)
            t_pause = producer.pause()
            _push_marker(markers, 1, t_pause + 0.05)  # during the outage
            time.sleep(1.0)  # the daemon goes stale
            producer.resume(backlog=False)  # the rig comes back, the outage's samples are gone
            events += _events(sub, 1)
            producer.pause()
            _push_marker(markers, 2, pylsl.local_clock() + 0.01)  # input never resumes
            events += _events(sub, 1)
    finally:
        producer.close()
        markers.close()
    _assert_once_each(events, 3)
    assert not events[0].flags & BAD
    assert events[1].flags & EventFlags.OUTAGE
    assert events[2].flags & EventFlags.NO_SAMPLES and events[2].flags & EventFlags.OUTAGE


def _wait(pred: Callable[[], bool], timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not pred() and time.monotonic() < end:
        time.sleep(0.02)
    assert pred()
