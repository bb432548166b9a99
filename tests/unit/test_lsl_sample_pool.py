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

from rtdecode.lsl import DEFAULT_LSL_CONFIG

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
    text = DEFAULT_LSL_CONFIG.read_text(encoding="utf-8")
    assert "[tuning]" in text
    untuned = tmp_path / "lsl_api.cfg"  # the same loopback scope, liblsl's default reserves
    untuned.write_text(text.split("[tuning]")[0], encoding="utf-8")
    ours, default = _pool_growth(DEFAULT_LSL_CONFIG), _pool_growth(untuned)
    # 5 s of 256 ch @ 30 kHz samples is ~158 MB; 500 ms is ~16 MB
    assert default["inlet_mb"] > 120 and default["outlet_mb"] > 120, default
    assert ours["inlet_mb"] < 40 and ours["outlet_mb"] < 40, ours
