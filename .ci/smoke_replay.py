"""CI smoke through the command line only: `rtdecode replay` a recording → `rtdecode serve` the shipped
Wiener model → `rtdecode listen` receives estimates and a running status. Exit 0 when all three work.

Runs with whatever interpreter calls it (the Python 3.10 check in .ci/py310.sh), loopback only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LSLAPICFG", str(ROOT / "rtdecode" / "data" / "lsl_api.cfg"))

from rtdecode.io.writers import write_npz  # noqa: E402
from rtdecode.sources.simulator import simulate_cortex_recording  # noqa: E402

RTD = [sys.executable, "-m", "rtdecode"]


def main() -> int:
    """Replay → serve → listen; returns the exit code."""
    work = Path(tempfile.mkdtemp(prefix="rtdecode-smoke-"))
    name = f"rtdecode-smoke-{uuid.uuid4().hex[:8]}"
    endpoint = f"ipc://{work}/pub.sock"
    rec = write_npz(simulate_cortex_recording(8.0, seed=3), work / "cortex.npz")
    cfg = work / "serve.toml"
    cfg.write_text(f'[source]\nname = "{name}"\nresolve_timeout_s = 30\n\n[[decoders]]\nname = "cortex"\n'
                   f'model = "{ROOT / "models" / "cortex_wiener.onnx"}"\n\n[sink]\nendpoint = "{endpoint}"\n'
                   'heartbeat_s = 0.2\n')
    replay = subprocess.Popen(RTD + ["replay", str(rec), "--name", name, "--loop"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    serve = subprocess.Popen(RTD + ["serve", str(cfg), "--duration", "25"], stderr=subprocess.PIPE, text=True)
    try:
        listen = subprocess.run(RTD + ["listen", endpoint, "--seconds", "12"], capture_output=True,
                                text=True, timeout=60)
    finally:
        for p in (serve, replay):
            p.terminate()
        errs = [p.communicate(timeout=30)[1] for p in (serve, replay)]
    last = listen.stdout.strip().splitlines()[-1] if listen.stdout.strip() else ""
    ok = (listen.returncode == 0 and "cortex: n=" in last and "state=running" in last
          and serve.returncode == 0 and replay.returncode == 0)
    print(f"smoke_replay: listen rc {listen.returncode}, serve rc {serve.returncode}, replay rc "
          f"{replay.returncode}\n  {last}")
    if not ok:
        print(listen.stderr, *errs, sep="\n---\n", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
