"""A 100 ms burst of finite but absurd input (1e38) through every shipped model, over real LSL and
ZeroMQ with the default configuration: no value outside the model's training range is ever
published flagged OK, the burst is flagged BAD_INPUT, and the output recovers afterwards.

Before the plausibility bounds (issue 12) the openhdemg model published 443 OK-flagged messages
over 4.3 s after such a burst, with forces up to 1.2e35 %MVC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtdecode.runtime.streaming import read_metadata
from rtdecode.sinks.protocol import Message
from rtdecode.types import Flags
from tests.faultkit import Producer, collect, record, serve, stop, subscriber, wait_status

ROOT = Path(__file__).resolve().parents[2]
#: shipped models grouped by the stream they decode (one daemon per stream)
GROUPS = {
    "cortex": ["cortex_wiener", "cortex_kf", "cortex_pv"],
    "flexemg": ["flexemg_mlp"],
    "monkey": ["monkey_reach_gru"],
    "openhdemg": ["openhdemg_gamma"],
    "ibci": ["ibci_velocity"],
}
#: [service] lines added for a group. The 30 kHz broadband stream is the one a loaded test machine
#: can make the daemon fall behind on: with the default budget it would then skip the burst itself
#: (issue 18's catch-up), which is not what this test is about.
SERVICE = {"ibci": "latency_budget_ms = 60000\n"}
BURST_S = (1.0, 1.1)  # stream time of the 1e38 burst, s
AFTER_S = 2.5  # streamed after the burst (longer than every model's memory, ≤ 1.3 s)


def test_every_shipped_model_is_in_a_group() -> None:
    shipped = sorted(p.stem for p in (ROOT / "models").glob("*.onnx"))
    assert shipped == sorted(n for names in GROUPS.values() for n in names)


def _config(path: Path, stream: str, names: list[str], endpoint: str, service: str = "") -> Path:
    decoders = "".join(f'[[decoders]]\nname = "{n}"\nmodel = "{ROOT / "models" / n}.onnx"\n\n' for n in names)
    path.write_text(f'[source]\nname = "{stream}"\nresolve_timeout_s = 20\n\n{decoders}'
                    f'[sink]\nendpoint = "{endpoint}"\nheartbeat_s = 0.2\nsndhwm = 1000000\n\n'
                    '[service]\nwarmup_runs = 2\nstats_interval_s = 5\n' + service)
    return path


def _plausible_then_burst(lo: np.ndarray, hi: np.ndarray, rate: float, seed: int):  # noqa: ANN202
    """Input within each channel's training range, and 1e38 on every channel during the burst."""
    rng = np.random.default_rng(seed)
    a, b = (int(s * rate) for s in BURST_S)

    def mutate(x: np.ndarray, idx: np.ndarray) -> None:
        x[:] = rng.uniform(lo, hi, size=x.shape).astype(np.float32)
        x[(idx >= a) & (idx < b)] = np.float32(1e38)
    return mutate


@pytest.mark.parametrize("group", list(GROUPS))
def test_1e38_burst_never_publishes_an_implausible_value_flagged_ok(
        tmp_path: Path, unique_name: str, ipc_endpoint: str, group: str,
        request: pytest.FixtureRequest) -> None:
    names = GROUPS[group]
    metas = {n: read_metadata(ROOT / "models" / f"{n}.onnx") for n in names}
    m0 = metas[names[0]]
    assert all(m.bounds is not None for m in metas.values()), "every shipped model carries bounds"
    lo = np.min([m.bounds.input.lo for m in metas.values()], axis=0)  # type: ignore[union-attr]
    hi = np.max([m.bounds.input.hi for m in metas.values()], axis=0)  # type: ignore[union-attr]
    chunk = max(1, int(m0.rate_hz / 200))
    cfg = _config(tmp_path / "serve.toml", unique_name, names, ipc_endpoint, SERVICE.get(group, ""))
    producer = Producer(unique_name, channels=m0.channels, rate_hz=m0.rate_hz, chunk=chunk,
                        mutate=_plausible_then_burst(lo, hi, m0.rate_hz, seed=len(group)))
    msgs: list[Message] = []
    end_t = BURST_S[1] + AFTER_S
    daemon = None
    with subscriber(ipc_endpoint, *names) as sub:
        try:
            daemon = serve(cfg)
            wait_status(sub, lambda s: s["state"] == "starting" and "resolving" in s["phase"])
            producer.start(wait_consumer_s=20)
            collect(sub, lambda: bool(msgs) and msgs[-1].t_source - producer.t0 > end_t, 60, msgs)
            final = wait_status(sub, lambda s: s["state"] == "running", into=msgs)
        finally:
            producer.close()
            err = stop(daemon)
    assert daemon is not None and daemon.returncode == 0, err
    times: dict[str, dict[str, float]] = {}
    assert msgs and msgs[-1].t_source - producer.t0 > end_t, "the stream did not get past the burst"
    for name in names:
        b = metas[name].bounds.output  # type: ignore[union-attr]
        mine = [m for m in msgs if m.topic == name]
        t = np.array([m.t_source - producer.t0 for m in mine])
        y = np.array([m.values for m in mine])
        flags = np.array([m.flags for m in mine])
        assert np.isfinite(y).all(), f"{name}: non-finite value published"
        ok = flags == 0
        outside = (y < np.asarray(b.min, np.float32)) | (y > np.asarray(b.max, np.float32))
        assert not (ok[:, None] & outside).any(), (
            f"{name}: OK-flagged values outside the training range "
            f"{b.min}..{b.max}: {y[ok & outside.any(axis=1)][:3]}")
        # rows whose frames hold burst samples only: from one frame period after the burst starts
        # (t_source is the frame's newest sample; on a loaded machine liblsl's clock-offset estimate
        # can move it by a few ms, so the first row in the window may still be pre-burst input —
        # which this uniform input already drives out of range: CLAMPED without BAD_INPUT, seen once)
        frame_s = float(np.median(np.diff(t)))
        in_burst = (t >= BURST_S[0] + frame_s) & (t < BURST_S[1])
        assert in_burst.any() and (flags[in_burst] & Flags.BAD_INPUT).all(), f"{name}: burst not flagged"
        late = t > BURST_S[1] + 1.5
        assert late.any() and not (flags[late] & Flags.BAD_INPUT).any(), f"{name}: never recovered"
        after = (t >= BURST_S[1]) & ~(flags & Flags.BAD_INPUT).astype(bool)
        times[name] = {"recover_s": round(float(t[after][0] - BURST_S[1]), 3),
                       "clamped_rows": int(((flags & Flags.CLAMPED) != 0).sum()), "rows": len(t)}
    assert final["out_of_range_samples"] >= int((BURST_S[1] - BURST_S[0]) * m0.rate_hz) - chunk
    record(request, f"burst_1e38_{group}", times)
