"""The project's liblsl config bounds the sample pool liblsl writes for every inlet and outlet.

liblsl pre-builds ``InletBufferReserveMs`` (``OutletBufferReserveMs``) of samples per inlet
(outlet) and touches all of it when the stream opens: 5 s by default, 158 MB at 256 ch @ 30 kHz
(621 MB at 1,024 ch). ``rtdecode/data/lsl_api.cfg`` sets 500 ms. Each measurement runs in a
fresh process, since liblsl reads its config once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rtdecode.lsl import DEFAULT_LSL_CONFIG, inlet_pool_mb, inlet_reserve_ms, pylsl, warn_large_pool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")

_MEASURE = """
import json, sys
import pylsl
def rss():
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
sid = sys.argv[1]
r0 = rss()
outlet = pylsl.StreamOutlet(pylsl.StreamInfo("pooltest", "EMG", 256, 30000.0, pylsl.cf_float32, sid))
r1 = rss()
inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", sid, timeout=10)[0], max_buflen=5)
inlet.open_stream(timeout=10)
r2 = rss()
print(json.dumps({"outlet_mb": r1 - r0, "inlet_mb": r2 - r1}))
"""


def _pool_growth(config: Path) -> dict[str, float]:
    """RSS growth (MB) of opening a 256 ch @ 30 kHz outlet, then an inlet on it, under ``config``."""
    env = dict(os.environ, LSLAPICFG=str(config))
    out = subprocess.run([sys.executable, "-c", _MEASURE, f"pooltest-{uuid.uuid4().hex}"], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_project_config_bounds_the_sample_pools(tmp_path: Path) -> None:
    assert "[tuning]" in DEFAULT_LSL_CONFIG.read_text(encoding="utf-8")
    untuned = _untuned(tmp_path)  # the same loopback scope, liblsl's default reserves
    ours, default = _pool_growth(DEFAULT_LSL_CONFIG), _pool_growth(untuned)
    # 5 s of 256 ch @ 30 kHz samples is ~158 MB; 500 ms is ~16 MB
    assert default["inlet_mb"] > 120 and default["outlet_mb"] > 120, default
    assert ours["inlet_mb"] < 40 and ours["outlet_mb"] < 40, ours
    # the size the daemon's warning quotes agrees with what liblsl wrote (MiB measured, MB quoted)
    quoted = inlet_pool_mb(30000.0, 256, pylsl.cf_float32, inlet_reserve_ms(str(untuned)))
    assert quoted is not None and abs(quoted / (default["inlet_mb"] * 1.048576) - 1) < 0.1


def _untuned(tmp_path: Path) -> Path:
    cfg = tmp_path / "untuned.cfg"
    cfg.write_text(DEFAULT_LSL_CONFIG.read_text(encoding="utf-8").split("[tuning]")[0], encoding="utf-8")
    return cfg


def test_reserve_is_read_from_the_config(tmp_path: Path) -> None:
    assert inlet_reserve_ms(str(DEFAULT_LSL_CONFIG)) == 500.0
    assert inlet_reserve_ms(str(_untuned(tmp_path))) == 5000.0  # liblsl's own default
    assert inlet_reserve_ms("") == 5000.0 and inlet_reserve_ms(str(tmp_path / "missing.cfg")) == 5000.0
    bad = tmp_path / "bad.cfg"
    bad.write_text("[tuning]\nInletBufferReserveMs = soon\n", encoding="utf-8")
    assert inlet_reserve_ms(str(bad)) == 5000.0
    assert inlet_pool_mb(100.0, 8, pylsl.cf_string, 5000.0) is None  # fixed 128-sample pools
    assert inlet_pool_mb(0.0, 8, pylsl.cf_float32, 5000.0) is None


def test_a_large_pool_is_warned_about_once_with_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    name = f"pool-{uuid.uuid4().hex}"
    info = pylsl.StreamInfo(name, "EEG", 1024, 30000.0, pylsl.cf_float32, name)
    monkeypatch.setenv("LSLAPICFG", str(_untuned(tmp_path)))
    with caplog.at_level("WARNING", logger="rtdecode.lsl"):
        warn_large_pool(info)
        warn_large_pool(info)
    warned = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(warned) == 1 and "about 622 MB" in warned[0] and "InletBufferReserveMs = 500" in warned[0]
    caplog.clear()
    other = pylsl.StreamInfo(name + "-b", "EEG", 1024, 30000.0, pylsl.cf_float32, name)
    monkeypatch.setenv("LSLAPICFG", str(DEFAULT_LSL_CONFIG))  # 500 ms: ~62 MB, no warning
    with caplog.at_level("WARNING", logger="rtdecode.lsl"):
        warn_large_pool(other)
    assert not [r for r in caplog.records if name in r.getMessage()]
