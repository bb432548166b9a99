"""The C header of docs/protocol.md parses frames exactly as the Python decoder does."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rtdecode.sinks.protocol import EstimateEncoder, Message, decode, encode_status
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


def test_doc_contains_the_c_struct() -> None:
    """docs/protocol.md shows the same struct as tests/c/rtd_frame.h."""
    header = (HERE / "rtd_frame.h").read_text()
    start = header.index("#pragma pack(push, 1)")
    struct_text = header[start : header.index("#pragma pack(pop)", start)]
    assert struct_text in DOC.read_text()
