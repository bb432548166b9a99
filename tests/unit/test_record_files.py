"""Session files without a daemon: the real recorder and writer on synthetic frames and chunks.

Rotation into parts and reading them back as one session, frames of kinds this version does
not know kept byte for byte, the report and the NWB export read back with pynwb.
"""

from __future__ import annotations

import json
import math
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import load_config
from rtdecode.record.reader import read_session
from rtdecode.record.recorder import Recorder
from rtdecode.runtime.streaming import read_metadata
from rtdecode.service.plugins import PluginContext, StreamFacts
from rtdecode.sinks.peek import peek
from rtdecode.sinks.protocol import HEADER_FORMAT, MAGIC, EstimateEncoder, encode_status
from rtdecode.types import Chunk, Flags
from tests.modelfactory import linear_model

pytest.importorskip("h5py")

RATE = 100.0


def _other_kind(topic: str, seq: int, t: float, payload: bytes) -> bytes:
    """A frame of kind 3 (pulse events, added by a later protocol revision)."""
    head = struct.pack(HEADER_FORMAT, MAGIC, 1, 3, 0x100, 2, seq, t, t + 0.001)
    return topic.encode() + b"\x00" + head + payload


def _session(tmp_path: Path, n_chunks: int = 60, **record: object) -> tuple[Recorder, dict]:
    """Record synthetic traffic through the real recorder and writer process."""
    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=3, lags=2)
    cfg = load_config(data={"source": {"name": "x"}, "decoders": [{"name": "dec", "model": str(model)}],
                            "record": {"dir": str(tmp_path / "s"), **record}})
    assert cfg.record is not None
    rec = Recorder(cfg.record)
    ctx = PluginContext(config=cfg, stream=StreamFacts("x", "sid", RATE, 3, ["a", "b", "c"]),
                        models={"dec": read_metadata(model)}, publish=lambda frame: None,
                        clock=lambda: 0.0)
    rec.open(ctx)
    assert rec.wait_ready()
    enc = EstimateEncoder("dec", 2)
    sent: dict = {"values": [], "flags": [], "events": []}
    for k in range(n_chunks):
        t = 10.0 + (np.arange(5) + 5 * k) / RATE
        x = np.full((5, 3), k, np.float32)
        stale = 20 <= k < 25  # an outage: no input, safe values flagged STALE instead
        if not stale:
            rec.on_chunk(Chunk(samples=x, t_lsl=t, first_index=5 * k, flags=int(Flags.GAP) if k == 3 else 0))
        v = np.array([k, -k], np.float32)
        flags = int(Flags.STALE | Flags.HOLD) if stale else 0
        rec.on_sent(enc.encode(k, flags, float(t[-1]), float(t[-1]) + 0.002, v))
        sent["values"].append(v)
        sent["flags"].append(flags)
        if k % 10 == 0:
            st = {"state": "running", "k": k, "stages_ms": {"tick": {"p50": 0.1, "p99": 0.2}}}
            rec.on_sent(encode_status("_status", k // 10, float(t[-1]), st))
            ev = _other_kind("tms", k // 10, float(t[0]), bytes(range(k % 7, k % 7 + 9)))
            rec.on_sent(ev)
            sent["events"].append(ev)
        if k % 7 == 0:
            _drained(rec)  # the writer drains in steps (more than one part with rotate_mb)
    rec.close()
    return rec, sent


def _drained(rec: Recorder) -> None:
    """Wait until the writer process has taken everything queued."""
    end = time.monotonic() + 60
    while rec.ring is not None and rec.ring.queued_bytes and time.monotonic() < end:
        time.sleep(0.01)


def _paths(rec: Recorder) -> list[Path]:
    s = rec.status()
    stem = Path(s["file"]).name.rsplit("_", 1)[0]
    return sorted(Path(s["file"]).parent.glob(f"{stem}_*.h5"))


@pytest.mark.parametrize("rotation", [{"rotate_mb": 0.001}, {"rotate_mb": None, "rotate_s": 0.01}],
                         ids=["by-size", "by-time"])
def test_rotated_parts_read_back_as_one_session_with_every_frame(tmp_path: Path, rotation: dict) -> None:
    rec, sent = _session(tmp_path, flush_interval_s=0.001, **rotation)
    paths = _paths(rec)
    assert len(paths) >= 2  # rotated by size (1 kB parts) or by time (10 ms parts)
    s = read_session([str(p) for p in reversed(paths)])  # any order: sorted by part
    assert s.complete and s.samples.shape == (275, 3)
    served = [k for k in range(60) if not 20 <= k < 25]
    np.testing.assert_array_equal(s.samples[::5, 0], np.array(served, np.float32))
    assert s.chunks["flags"][3] == Flags.GAP and s.chunks["n"].sum() == 275
    # the chunk after the STALE stretch is marked: the daemon reset its state there
    assert np.flatnonzero(s.chunks["resumed"]).tolist() == [served.index(25)]
    e = s.estimates("dec")
    np.testing.assert_array_equal(e["values"], np.vstack(sent["values"]))
    np.testing.assert_array_equal(e["flags"], sent["flags"])
    assert [st["k"] for st in s.statuses()] == list(range(0, 60, 10))
    # a kind this version does not know: header and payload kept byte for byte
    rows = s.topic_rows("tms")
    assert rows.size == len(sent["events"])
    for i, frame in zip(rows, sent["events"], strict=True):
        h = peek(frame)
        assert h is not None and s.index["kind"][i] == 3 and s.index["flags"][i] == 0x100
        assert s.payload_of(int(i)) == frame[h.payload_start:]
    # a later part alone is readable but not complete (state before it unknown)
    assert not read_session(paths[1]).complete


def test_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the report's plots need matplotlib (the record extra)")
    rec, sent = _session(tmp_path)
    path = _paths(rec)[0]
    from rtdecode.record.report import write_report

    md = write_report(read_session(path), tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    dec = summary["topics"]["dec"]
    assert dec["messages"] == 60 and dec["flag_counts"]["STALE"] == 5
    assert dec["stale_episodes"] == [{"start_s": pytest.approx(1.042, abs=1e-6),
                                      "end_s": pytest.approx(1.242, abs=1e-6), "rows": 5}]
    assert summary["input"]["chunks_flagged"]["GAP"] == 1 and summary["stages_ms"]["tick"]["p99"] == 0.2
    for png in ("outputs.png", "age.png", "stages.png"):
        assert (tmp_path / "report" / png).stat().st_size > 5000
    assert "| dec | 60 | 55 |" in md.read_text()


def test_nwb_export_reads_back(tmp_path: Path) -> None:
    pynwb = pytest.importorskip("pynwb")
    from rtdecode.record.nwb import export_nwb

    rec, sent = _session(tmp_path)
    path = _paths(rec)[0]

    out = export_nwb(read_session(path), tmp_path / "s.nwb")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        x = f.acquisition["input"]
        assert x.data.shape == (275, 3) and math.isclose(x.timestamps[1], 0.01)
        np.testing.assert_array_equal(f.processing["rtdecode"]["dec"].data[:], np.vstack(sent["values"]))
        np.testing.assert_array_equal(f.processing["rtdecode"]["dec_flags"].data[:], sent["flags"])
        assert json.loads(f.notes)["decoders"][0]["name"] == "dec"
        st = f.get_events_table("status")
        assert len(st) == 6 and json.loads(st["annotation"][0])["k"] == 0
        fr = f.get_events_table("frames")
        assert list(fr["topic"][:]) == ["tms"] * 6 and fr["kind"][0] == 3


def test_peek_refuses_what_is_not_a_frame() -> None:
    assert peek(b"") is None and peek(b"\x00abc") is None and peek(b"x" * 100) is None
    assert peek(b"t\x00" + b"XXXX" + bytes(36)) is None  # wrong magic
    h = peek(_other_kind("tms", 7, 1.5, b"abc"))
    assert h is not None and (h.topic, h.kind, h.seq, h.count) == ("tms", 3, 7, 2)


def test_record_config_errors_name_the_field(tmp_path: Path) -> None:
    from rtdecode.errors import ConfigError

    model = linear_model(tmp_path / "m.onnx", rate_hz=RATE, channels=3, lags=2)
    with pytest.raises(ConfigError, match="record.flush_interval_s"):
        load_config(data={"source": {"name": "x"}, "decoders": [{"name": "d", "model": str(model)}],
                          "record": {"flush_interval_s": 0}})
    with pytest.raises(ConfigError, match="record.compresion"):
        load_config(data={"source": {"name": "x"}, "decoders": [{"name": "d", "model": str(model)}],
                          "record": {"compresion": "gzip"}})
