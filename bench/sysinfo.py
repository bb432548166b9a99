"""What a benchmark ran on, and what a process costs: machine description, /proc readers.

All readers use Linux ``/proc``; elsewhere they return NaN (the harness still runs).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time

__all__ = ["cpu_model", "proc_cpu_s", "proc_rss_mb", "machine", "clock_check"]


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), s."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid``, MB."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return float("nan")


def _gpu() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _mem_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def clock_check() -> dict[str, float]:
    """Difference between ``pylsl.local_clock()`` and ``time.monotonic()`` (µs).

    On Linux both read CLOCK_MONOTONIC, so the harness may timestamp with the cheaper
    ``time.monotonic()`` and compare with LSL times; this records the proof.
    """
    from rtdecode.lsl import pylsl

    diffs = []
    for _ in range(20):
        a = time.monotonic()
        b = pylsl.local_clock()
        c = time.monotonic()
        diffs.append((b - 0.5 * (a + c)) * 1e6)
    diffs.sort()
    return {"median_us": round(diffs[len(diffs) // 2], 3), "max_abs_us": round(max(map(abs, diffs)), 3)}


def machine() -> dict:
    """CPU, cores, memory, GPU, ONNX Runtime providers and library versions."""
    import numpy
    import onnxruntime
    import zmq

    from rtdecode import __version__
    from rtdecode.lsl import pylsl

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": _mem_gib(), "gpu": _gpu(),
        "platform": platform.platform(), "load_average_at_start": load,
        "ort_providers": onnxruntime.get_available_providers(),
        "versions": {"rtdecode": __version__, "python": platform.python_version(),
                     "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
                     "pylsl": getattr(pylsl, "__version__", "?"),
                     "liblsl": pylsl.library_version(), "pyzmq": zmq.__version__,
                     "libzmq": zmq.zmq_version()},
        "clock": {"harness": "time.monotonic", "lsl": "pylsl.local_clock",
                  "local_clock_minus_monotonic": clock_check()},
    }
