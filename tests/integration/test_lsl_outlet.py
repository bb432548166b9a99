"""Predictions as LSL streams: the daemon with ``[lsl_outlet]`` pushes each estimate into an LSL
outlet per topic, with the flags as a last channel and ``t_source`` as the timestamp — the
same values, in the same order, as the ZeroMQ output. Real LSL, ZeroMQ and daemon process.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rtdecode.lsl import channel_labels, pylsl
from rtdecode.sinks.protocol import Message
from tests.faultkit import Producer, collect, serve, stop, subscriber, wait_status, write_config
from tests.modelfactory import linear_model

RATE = 500.0


def test_each_estimate_is_also_pushed_to_lsl_with_its_source_time(
        tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=4, lags=3,
                         chain=[{"kind": "bin", "factor": 5, "reduce": "mean"}])
    prefix = f"{unique_name}-pred-"
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint,
                       source=f"channels = 4\nrate_hz = {RATE}\nindex_channel = 0",
                       extra=f'[lsl_outlet]\nprefix = "{prefix}"\n')
    msgs: list[Message] = []
    daemon = serve(cfg)
    producer = inlet = None
    try:
        with subscriber(ipc_endpoint, "dec") as sub:
            wait_status(sub, lambda s: s["state"] == "starting")
            producer = Producer(unique_name, chunk=5).start(wait_consumer_s=30)
            found = pylsl.resolve_bypred(f"name='{prefix}dec'", 1, 30.0)
            assert found, "the prediction outlet did not appear"
            inlet = pylsl.StreamInlet(found[0], max_buflen=60)
            info = inlet.info(10.0)
            assert info.type() == "Predictions" and info.nominal_srate() == RATE / 5
            assert channel_labels(info) == ["y0", "y1", "flags"]
            inlet.open_stream(10.0)
            collect(sub, lambda: len(msgs) >= 300, 60, msgs)
            got_x, got_t = [], []
            end = time.monotonic() + 30
            while sum(len(t) for t in got_t) < 150 and time.monotonic() < end:
                x, t = inlet.pull_chunk(timeout=0.2, max_samples=1000)
                if t:
                    got_x.append(np.asarray(x, np.float32))
                    got_t.append(np.asarray(t))
            st = wait_status(sub, lambda s: s["lsl_outlet"]["topics"]["dec"]["pushed"] >= 150)
            assert st["lsl_outlet"]["topics"]["dec"]["consumers"] is True
    finally:
        if producer is not None:
            producer.close()
        if inlet is not None:
            inlet.close_stream()
        stop(daemon)
    # the inlet joined late: find where its samples start among the ZeroMQ messages, then compare
    # one for one (not by timestamp alone: the STALE messages of an input stall hold the last
    # estimate's value and t_source, so several messages can share both)
    x, t = np.concatenate(got_x), np.concatenate(got_t)
    rows = np.array([[*m.values, int(m.flags)] for m in msgs], np.float32)
    t_src = np.array([m.t_source for m in msgs])
    starts = [k for k in range(len(msgs)) if t_src[k] == t[0] and (rows[k] == x[0]).all()]
    assert starts, "the first LSL sample is no ZeroMQ message"
    aligned = [k for k in starts if _same_from(k, t_src, rows, t, x)]
    assert aligned, f"no start {starts} where the LSL samples equal the messages one for one"
    k = aligned[0]
    n = min(t.size, len(msgs) - k)
    assert n >= 100
    np.testing.assert_array_equal(np.diff([m.seq for m in msgs[k : k + n]]), 1)  # every one, in order


def _same_from(k: int, t_src: np.ndarray, rows: np.ndarray, t: np.ndarray, x: np.ndarray) -> bool:
    """Do the LSL samples (t, x) equal the messages (t_src, rows) from message k on, one for one?"""
    n = min(t.size, t_src.size - k)
    return bool((t_src[k : k + n] == t[:n]).all() and (rows[k : k + n] == x[:n]).all())
