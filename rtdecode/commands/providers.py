"""``rtdecode providers [--require tensorrt,cuda]``: which ONNX Runtime build is installed.

Prints the onnxruntime version, the distributions that provide it (``onnxruntime`` for the
CPU, ``onnxruntime-gpu``), the execution providers in the build, the TensorRT library and
the CUDA device this process would use. With ``--require`` it exits 4 (model / provider
error) and names the fix unless every listed provider is in the build, so an install script
stops instead of leaving a CPU-only build behind (deploy/jetson/install-ort.sh runs it). A
provider in the build can still fail to start (a library that does not match): opening a
model on it checks that (``rtdecode trt-build``, ``rtdecode doctor CONFIG``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``providers`` sub-command."""
    p = sub.add_parser("providers", help="show the onnxruntime build and its execution providers; "
                       "--require fails unless the listed ones are present",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--require", default="", metavar="LIST",
                   help="comma-separated providers that must be in the build, e.g. tensorrt,cuda")
    p.add_argument("--device-id", type=int, default=0, help="CUDA device to describe (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def collect(device_id: int = 0) -> dict[str, Any]:
    """The onnxruntime build, its providers, the TensorRT library and the CUDA device."""
    import onnxruntime as ort

    from rtdecode.runtime.devices import cuda_device, tensorrt_version
    from rtdecode.runtime.providers import available_providers, ort_distributions

    dev = cuda_device(device_id)
    return {"onnxruntime": ort.__version__, "distributions": ort_distributions(),
            "build_providers": ort.get_available_providers(), "available": available_providers(),
            "tensorrt_library": tensorrt_version(),
            "cuda_device": {"id": device_id, "name": dev[0], "compute_capability": dev[1]} if dev else None}


def format_report(r: dict[str, Any]) -> str:
    """The report as short text."""
    dists = ", ".join(f"{k} {v}" for k, v in r["distributions"].items()) or "none found"
    dev = r["cuda_device"]
    return "\n".join([
        f"onnxruntime {r['onnxruntime']} (installed by: {dists})",
        f"execution providers: {', '.join(r['available'])}",
        f"TensorRT library: {r['tensorrt_library'] or 'not found'}",
        "CUDA device: " + (f"{dev['id']}: {dev['name']} (compute capability {dev['compute_capability']})"
                           if dev else "none"),
    ])


def run(args: argparse.Namespace) -> int:
    """Print the report; raise (exit 4, with the fix) when a required provider is missing."""
    from rtdecode.runtime.providers import require_providers

    report = collect(args.device_id)
    sys.stdout.write((json.dumps(report, indent=2) if args.json else format_report(report)) + "\n")
    required = [p.strip() for p in args.require.split(",") if p.strip()]
    if required:
        require_providers(required)
        if not args.json:
            sys.stdout.write(f"required providers present: {', '.join(required)}\n")
    return 0
