"""Bad input over real LSL + ZeroMQ: NaN / Inf / out-of-range bursts give finite, flagged output
around the burst only; a wrong stream, a corrupt or mismatched model and a bad config stop the
daemon at start-up with a distinct exit code and a message that names the fix."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rtdecode.lsl import pylsl
from rtdecode.sinks.protocol import Message
from rtdecode.types import Flags
from tests.faultkit import (
    PY,
    Producer,
    collect,
    record,
    serve,
    stop,
    subscriber,
    wait_status,
    write_config,
)
from tests.modelfactory import linear_model

RATE = 500.0
NAN_BURST = (500, 540)  # samples [a, b) with NaN on channel 1
INF_BURST = (900, 905)  # +inf / -inf on channel 3
BIG_BURST = (1300, 1310)  # 1e7 on channel 2, beyond preprocessing.max_abs
WINDOW = 100  # a daemon chunk may hold several pushes: flags may spread this far (0.2 s)


def _inject(x: np.ndarray, idx: np.ndarray) -> None:
    for (a, b), ch, value in ((NAN_BURST, 1, np.nan), (INF_BURST, 3, np.inf), (BIG_BURST, 2, 1e7)):
        hit = (idx >= a) & (idx < b)
        x[hit, ch] = value
    x[(idx >= INF_BURST[0]) & (idx < INF_BURST[1]) & (idx % 2 == 0), 3] = -np.inf


def test_nan_inf_and_out_of_range_bursts_are_repaired_and_flagged(
        tmp_path: Path, unique_name: str, ipc_endpoint: str) -> None:
    # output 0 is input channel 0 (the sample index) at lag 0: each row names its sample
    model = linear_model(tmp_path / "ident.onnx", rate_hz=RATE, channels=4, lags=3, identity_channel=0)
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint,
                       source=f"channels = 4\nrate_hz = {RATE}\nindex_channel = 0",
                       extra="[preprocessing]\nnonfinite = \"hold\"\nmax_abs = 1e6\n")
    msgs: list[Message] = []
    daemon = p = None
    with subscriber(ipc_endpoint, "dec") as sub:
        try:
            daemon = serve(cfg)
            wait_status(sub, lambda s: s["state"] == "starting" and "resolving" in s["phase"])
            p = Producer(unique_name, mutate=_inject).start(wait_consumer_s=20)
            collect(sub, lambda: bool(msgs) and msgs[-1].values[0] >= BIG_BURST[1] + 3 * WINDOW, 30, msgs)
            final = wait_status(sub, lambda s: s["state"] == "running", into=msgs)
        finally:
            if p is not None:
                p.close()
            err = stop(daemon)
    assert daemon.returncode == 0, err
    assert msgs and all(np.isfinite(m.values).all() for m in msgs), "a non-finite value was published"
    idx = np.array([m.values[0] for m in msgs])
    bad = np.array([bool(m.flags & Flags.BAD_INPUT) for m in msgs])
    assert idx[-1] >= BIG_BURST[1] + 3 * WINDOW and idx[0] < NAN_BURST[0] - WINDOW
    for a, b in (NAN_BURST, INF_BURST, BIG_BURST):
        inside = (idx >= a) & (idx < b)
        assert inside.sum() == b - a and bad[inside].all()  # each burst sample: one flagged row
    near = np.zeros(idx.size, bool)
    for a, b in (NAN_BURST, INF_BURST, BIG_BURST):
        near |= (idx >= a - WINDOW) & (idx < b + WINDOW)
    assert not bad[~near].any(), f"BAD_INPUT far from any burst at {idx[bad & ~near][:5]}"
    # input repaired: output 0 stays the exact index, other outputs finite (checked above)
    assert np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size))
    assert final["bad_input_samples"] == (NAN_BURST[1] - NAN_BURST[0]) + (INF_BURST[1] - INF_BURST[0])
    assert final["out_of_range_samples"] == BIG_BURST[1] - BIG_BURST[0]


def _outlet(name: str, channels: int, rate: float, fmt: str = "float32") -> pylsl.StreamOutlet:
    return pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", channels, rate, fmt, name))


# case: (outlet (channels, rate, format) or None, model (channels, rate) or "truncated",
#        source extra, service extra, config extra, exit code, words in stderr)
CASES = {
    "string_stream": ((1, 0.0, "string"), (4, 500.0), "", "", "", 3,
                      ["channel format string", "numeric streams only", "Fix:"]),
    "wrong_rate": ((4, 250.0, "float32"), (4, 500.0), "rate_hz = 500.0", "", "", 3,
                   ["runs at 250 Hz", "source.rate_hz", "Fix:"]),
    "model_wrong_channels": ((6, 500.0, "float32"), (4, 500.0), "", "", "", 4,
                             ["trained on 4 channels", "the stream has 6", "Fix:"]),
    "model_wrong_rate": ((4, 250.0, "float32"), (4, 500.0), "", "", "", 4,
                         ["expects 500 Hz input", "250 Hz", "Fix:"]),
    "truncated_model": (None, "truncated", "", "", "", 4,
                        ["cannot load model", "m.onnx", "corrupt", "Fix:"]),
    "safe_vector_length": (None, (4, 500.0), "", 'safe_value = "vector"\nsafe_vector = [0, 0, 0]', "",
                           2, ["service.safe_vector has 3 values", "2 outputs", "Fix:"]),
    "unknown_config_key": (None, (4, 500.0), "", "stale_afterr_s = 1", "", 2,
                           ["service.stale_afterr_s", "remove this key", "Fix:"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_startup_error_is_clear_with_a_distinct_exit_code(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, request: pytest.FixtureRequest,
        case: str) -> None:
    stream, model_spec, source, service, extra, code, words = CASES[case]
    model = tmp_path / "m.onnx"
    if model_spec == "truncated":
        linear_model(tmp_path / "good.onnx", rate_hz=500.0, channels=4)
        model.write_bytes((tmp_path / "good.onnx").read_bytes()[:100])
    else:
        linear_model(model, rate_hz=model_spec[1], channels=model_spec[0])
    cfg = write_config(tmp_path / "serve.toml", name=unique_name, model=model, endpoint=ipc_endpoint,
                       source=source, service=service, extra=extra)
    outlet = _outlet(unique_name, *stream) if stream is not None else None
    t0 = time.monotonic()
    r = subprocess.run(PY + ["serve", str(cfg)], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    del outlet
    assert r.returncode == code, r.stderr[-2000:]
    err = r.stderr[r.stderr.find("rtdecode serve: error"):]
    for w in words:
        assert w in err, f"{w!r} not in:\n{r.stderr[-3000:]}"
    record(request, f"startup_{case}", {"fault": case, "exit_code": r.returncode,
                                        "process_wall_s": round(took, 3), "message": err[:400]})

