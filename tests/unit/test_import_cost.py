"""Start-up imports: the command line and the daemon do not import ``scipy.signal`` (~1 s on the
development VM, half of ``rtdecode --help``) until a filter or a simulator is built, and a
built filter does not import anything more when a long chunk first arrives. Fresh interpreters,
since this process has long imported scipy.signal."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy.signal", "scipy.stats", "scipy.optimize")


def _loaded_after(code: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of HEAVY it left imported."""
    probe = code + f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cli_parser_and_daemon_modules_import_no_scipy_signal() -> None:
    loaded = _loaded_after("from rtdecode.cli import build_parser\nbuild_parser()\n"
                           "import rtdecode.service.daemon, rtdecode.commands.serve")
    assert not any(loaded.values()), loaded


def test_a_built_filter_needs_no_import_on_its_first_long_chunk() -> None:
    loaded = _loaded_after(
        "from rtdecode.dsp.filters import SosState\n"
        "import numpy as np, scipy.signal as s, sys\n"
        "f = SosState(s.butter(4, 100.0, fs=1000.0, output='sos'), 2)\n"
        "del sys.modules['scipy.signal']; del sys.modules['scipy'].signal\n"  # step() importing it: back
        "f.step(np.ones((500, 2)))\n")
    assert not loaded["scipy.signal"]
