"""The demo end to end (simulator → daemon → viewer) as `make demo` runs it, shortened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_summary(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    r = subprocess.run([sys.executable, "-m", "rtdecode", "demo", "--seconds", "6", "--quiet",
                        "--json", str(out)], capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(out.read_text())
    for key in ("samples_in", "messages_out", "dropped", "latency_ms", "quality"):
        assert key in s
    assert set(s["latency_ms"]) >= {"p50", "p99", "p999", "max"}
    assert s["dropped"] == 0
    assert s["samples_in"] >= 5000 and s["messages_out"] >= 250
    assert s["messages_received"] == s["messages_out"]
    # the shipped decoder really decodes the simulated subject (held-out R² 0.9 in its card)
    assert s["quality"]["R2"] is not None and s["quality"]["R2"] > 0.6
    assert "demo summary" in r.stdout
