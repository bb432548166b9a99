"""The C header of docs/protocol.md parses frames exactly as the Python decoder does."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rtdecode.sinks.event_payload import EventFlags
from rtdecode.sinks.protocol import EstimateEncoder, EventEncoder, Message, decode, encode_status
from rtdecode.types import Flags

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "protocol.md"


def _compiler() -> str | None:
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def rtd_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH; cannot build tests/c/rtd_dump.c")
    exe = tmp_path_factory.mktemp("cbuild") / "rtd_dump"
    result = subprocess.run(
        [
            cc,
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
            "-o",
            str(exe),
            str(HERE / "rtd_dump.c"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"rtd_dump.c failed to compile:\n{result.stderr}"
    return exe


def _dump(exe: Path, frame: bytes, tmp_path: Path) -> tuple[int, list[str]]:
    path = tmp_path / "frame.bin"
    path.write_bytes(frame)
    result = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=10)
    return result.returncode, result.stdout.splitlines()


def _expected(msg: Message) -> list[str]:
    def fmt(x: float) -> str:
        return "nan" if math.isnan(x) else format(x, ".17g")

    count = len(msg.values) if msg.values is not None else None
    lines = [
        f"topic={msg.topic}",
        f"version={msg.version}",
        f"kind={msg.kind}",
        f"flags={int(msg.flags)}",
        f"count={count}",
        f"seq={msg.seq}",
        f"t_source={fmt(msg.t_source)}",
        f"t_publish={fmt(msg.t_publish)}",
    ]
    if msg.values is not None:
        lines += [f"value[{i}]={format(float(v), '.9g')}" for i, v in enumerate(msg.values)]
    return lines


@pytest.mark.parametrize(
    ("topic", "n_values", "seq", "flags"),
    [
        ("cortex", 3, 0, Flags.OK),
        ("emg.wrist-velocity", 15, 2**40 + 7, Flags.WARMUP | Flags.GAP | Flags.CLAMPED),
        ("x", 1, 2**64 - 1, 0xFFFFFFFF),
        ("é" * 31, 64, 12345, Flags.STALE),
    ],
)
def test_c_dump_matches_python_estimate(
    rtd_dump: Path, tmp_path: Path, topic: str, n_values: int, seq: int, flags: int
) -> None:
    rng = np.random.default_rng(n_values)
    values = (rng.standard_normal(n_values) * 10.0 ** rng.integers(-8, 8, n_values)).astype(
        np.float32
    )
    values[0] = -0.0
    frame = bytes(EstimateEncoder(topic, n_values).encode(seq, flags, 1234.5678, 1234.6, values))
    rc, lines = _dump(rtd_dump, frame, tmp_path)
    assert rc == 0
    msg = decode(frame)
    expected = _expected(msg)
    expected[4] = f"count={n_values}"
    assert lines == expected


@pytest.mark.parametrize("t_source", [math.nan, 99.25])
def test_c_dump_matches_python_status(rtd_dump: Path, tmp_path: Path, t_source: float) -> None:
    status = {"state": "running", "samples_in": 123456, "latency_ms": {"p50": 1.5}, "µ": "ü"}
    frame = encode_status("_status", 42, 1000.125, status, Flags.DEGRADED, t_source=t_source)
    rc, lines = _dump(rtd_dump, frame, tmp_path)
    assert rc == 0
    msg = decode(frame)
    payload_len = len(frame) - frame.index(b"\x00") - 1 - 40
    expected = _expected(msg)
    expected[4] = f"count={payload_len}"
    assert lines[:8] == expected
    assert len(lines) == 9 and lines[8].startswith("status=")
    assert json.loads(lines[8][len("status=") :]) == msg.status


@pytest.mark.parametrize(("n_channels", "unit", "flags"), [
    (15, "%RMT", EventFlags.PREACTIVATED | Flags.GAP),
    (1, "", EventFlags.NO_SAMPLES | EventFlags.OUTAGE),
    (3, "%MSO", Flags.OK),
])
def test_c_dump_matches_python_event(rtd_dump: Path, tmp_path: Path, n_channels: int, unit: str,
                                     flags: int) -> None:
    rng = np.random.default_rng(n_channels)
    values = (rng.standard_normal((n_channels, 4)) * 1e3).astype(np.float32)
    ch_flags = rng.integers(0, 2**12, n_channels).astype(np.uint32)
    frame = bytes(EventEncoder("tms", n_channels).encode(
        2**33 + 5, flags, 4321.25, 4321.5, pulse_id=2**40 + 3, t_pulse=4321.1875, values=values,
        channel_flags=ch_flags, window_ms=(20.0, 50.0), intensity=120.5 if unit else 0.0,
        intensity_unit=unit))
    rc, lines = _dump(rtd_dump, frame, tmp_path)
    assert rc == 0
    msg = decode(frame)
    ev = msg.event
    assert ev is not None
    expected = _expected(msg)
    expected[4] = f"count={n_channels}"
    expected += [f"pulse_id={ev.pulse_id}", f"t_pulse={format(ev.t_pulse, '.17g')}",
                 f"intensity={format(ev.intensity, '.9g')}",
                 f"intensity_unit={['', '%MSO', '%RMT'].index(ev.intensity_unit)}",
                 "n_measures=4", "window_ms=20,50"]
    expected += [f"channel[{m}]=flags:{int(ev.channel_flags[m])},"
                 + ",".join(format(float(v), ".9g") for v in ev.values[m]) for m in range(n_channels)]
    assert lines == expected


@pytest.mark.parametrize(
    "frame",
    [
        b"no-nul-here",
        b"\x00" + b"RTDC" + bytes(36),
        b"cortex\x00RTDC",
        b"cortex\x00XXXX" + bytes(36),
    ],
)
def test_c_dump_rejects_malformed(rtd_dump: Path, tmp_path: Path, frame: bytes) -> None:
    rc, _ = _dump(rtd_dump, frame, tmp_path)
    assert rc == 2


def test_c_dump_rejects_truncated_event(rtd_dump: Path, tmp_path: Path) -> None:
    frame = bytes(EventEncoder("tms", 2).encode(0, 0, 1.0, 1.0, pulse_id=0, t_pulse=1.0,
                                                values=np.zeros((2, 4)), channel_flags=np.zeros(2),
                                                window_ms=(20.0, 50.0)))
    for cut in (frame[:-4], frame[:-40], frame[: len(frame) - 40 - 32 + 8]):
        rc, _ = _dump(rtd_dump, cut, tmp_path)
        assert rc == 2


def test_doc_contains_the_c_structs() -> None:
    """docs/protocol.md shows the same structs as tests/c/rtd_frame.h."""
    header = (HERE / "rtd_frame.h").read_text()
    doc = DOC.read_text()
    start = 0
    for _ in range(2):  # the frame header and the event header
        start = header.index("#pragma pack(push, 1)", start)
        struct_text = header[start : header.index("#pragma pack(pop)", start)]
        assert struct_text in doc
        start += 1
