"""Producer process of the latency harness: pushes samples at the true rate, logs push times.

Sample ``i`` carries the LSL timestamp ``t0 + i / rate`` (drift-free schedule,
:class:`rtdecode.sources.pacing.Pacer`) and channel 0 carries ``i`` (the index channel, so
the consumer counts lost / duplicated samples exactly; ``--no-index`` leaves the data as
is). Chunk ``k`` (samples ``k*chunk .. (k+1)*chunk-1``) is pushed once its last sample is
due; the host clock
(``time.monotonic()`` = ``pylsl.local_clock()`` on Linux) is read right before the push and
kept in a preallocated array. At the end the push log is written as ``.npz``:

``t0`` (s), ``rate_hz``, ``chunk``, ``n_pushed``, ``push_t`` float64 (n_chunks,) — the
harness maps every received message to the push time of its newest contributing sample
with ``i = round((t_source - t0) * rate_hz)``, ``push_t[i // chunk]``.

    python -m bench producer --name S --channels 64 --rate 2048 --chunk 2 --seconds 10 --out push.npz
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from rtdecode.lsl import pylsl
from rtdecode.sources.pacing import Pacer
from rtdecode.sources.player import copy_looped

logger = logging.getLogger(__name__)

#: The real HD-sEMG recording used for 64 ch @ 2048 Hz where the shared data is present.
OTB = (Path(__file__).resolve().parents[2] / "shared" / "data" / "openhdemg_otb_hdsemg_force"
       / "otb_testfile.mat")
INDEX_MODULUS = 2**24
#: Most float32 values of looped broadband data held in memory (256 MB).
BROADBAND_VALUES = 64_000_000


def source_data(channels: int, rate_hz: float, kind: str = "auto", seconds: float = 4.0
                ) -> tuple[np.ndarray, str]:
    """Samples to loop, float32 (n, channels), and their description.

    ``auto``: the real openhdemg recording for 64 ch @ 2048 Hz when ``../shared/data`` has it,
    else seeded Gaussian noise (50 µV rms) — the cost of decoding does not depend on content.
    ``broadband``: ``rtdecode simulate broadband`` (seed 0, subject 7): up to 2 s, fewer where
    that would pass :data:`BROADBAND_VALUES` values.
    """
    if kind == "broadband":
        from rtdecode.sources.broadband import BroadbandSimulator

        n = int(min(2.0 * rate_hz, BROADBAND_VALUES // channels))
        x, _ = BroadbandSimulator(channels, rate_hz, seed=0, subject_seed=7).generate(n)
        return x, (f"simulated broadband (rtdecode simulate broadband, seed 0, subject 7), {channels} ch, "
                   f"{rate_hz:g} Hz, {n / rate_hz:.3g} s, looped")
    if kind in ("auto", "otb") and channels == 64 and rate_hz == 2048.0 and OTB.exists():
        from rtdecode.io.readers import read_recording

        rec = read_recording(OTB)
        return np.ascontiguousarray(rec.x[:, :64], dtype=np.float32), \
            "openhdemg otb_testfile.mat (real HD-sEMG, 64 ch, 2048 Hz), looped"
    rng = np.random.default_rng(0)
    n = max(1, int(rate_hz * seconds))
    x = (rng.standard_normal((n, channels)) * 50.0).astype(np.float32)
    return x, f"seeded Gaussian noise, {channels} ch, {rate_hz:g} Hz, {seconds:g} s, looped"


def run(name: str, channels: int, rate_hz: float, chunk: int, seconds: float, out: Path,
        wait_consumer_s: float = 60.0, data: str = "auto", linger_s: float = 0.5,
        index: bool = True) -> dict:
    """Create the outlet, wait for a consumer, push for ``seconds``, write the push log."""
    x, desc = source_data(channels, rate_hz, data)
    info = pylsl.StreamInfo(name, "EMG", channels, rate_hz, pylsl.cf_float32, f"bench:{name}")
    outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
    if not outlet.wait_for_consumers(wait_consumer_s):
        raise SystemExit(f"producer: no consumer for stream {name!r} within {wait_consumer_s:g} s")
    time.sleep(0.2)  # let the consumer finish opening (time correction, open_stream)
    n_total = int(round(seconds * rate_hz))
    n_chunks = math.ceil(n_total / chunk)
    push_t = np.zeros(n_chunks, dtype=np.float64)
    buf = np.empty((chunk, channels), dtype=np.float32)
    ramp = np.arange(chunk, dtype=np.float64)
    pacer = Pacer(rate_hz, chunk)
    t0 = pacer.start()
    pos = 0
    i = 0
    cpu0 = time.process_time()
    for k in range(n_chunks):
        n = min(chunk, n_total - i)
        pos = copy_looped(buf[:n], x, pos)
        if index:
            buf[:n, 0] = np.mod(ramp[:n] + i, INDEX_MODULUS)
        pacer.wait_until(pacer.sample_time(i + n))
        t_push = time.monotonic()
        # one timestamp for the newest sample: liblsl back-dates the others by 1/rate each
        outlet.push_chunk(buf[:n], (i + n - 1) / rate_hz + t0)
        push_t[k] = t_push
        i += n
    cpu1 = time.process_time()
    wall = time.monotonic() - t0
    if linger_s > 0:
        time.sleep(linger_s)  # liblsl drops what is still queued when the outlet is destroyed
    del outlet
    res = {"t0": t0, "rate_hz": rate_hz, "chunk": chunk, "n_pushed": i, "push_t": push_t,
           "n_late": pacer.n_late, "max_lateness_s": pacer.max_lateness_s,
           "cpu_share": (cpu1 - cpu0) / wall if wall > 0 else float("nan"), "data": desc}
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, **res)
    os.replace(tmp, out)
    return res


def main(argv: list[str] | None = None) -> int:
    """CLI entry (``python -m bench producer``)."""
    ap = argparse.ArgumentParser(prog="python -m bench producer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--channels", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--chunk", type=int, required=True, help="samples per push")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--out", type=Path, required=True, help="push log (.npz)")
    ap.add_argument("--data", choices=["auto", "noise", "otb", "broadband"], default="auto")
    ap.add_argument("--no-index", action="store_true", help="leave channel 0 as data (no sample index)")
    ap.add_argument("--wait-consumer-s", type=float, default=60.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run(args.name, args.channels, args.rate, args.chunk, args.seconds, args.out,
        args.wait_consumer_s, args.data, index=not args.no_index)
    return 0
