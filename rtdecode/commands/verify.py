"""``rtdecode verify MODEL.onnx``: prove the streaming-state contract of a model file.

Compares ONNX offline, ONNX streaming in random chunks (each execution provider) and,
when the export sidecar ``<stem>.torch.npz`` exists, the torch model offline and its
final ``step`` states. Exit 0 when every comparison is within tolerance, 1 otherwise;
an unreadable model is a ModelError (exit 4).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``verify`` sub-command."""
    p = sub.add_parser("verify", help="check torch offline == ONNX offline == ONNX streaming for a model "
                       "(event models: batch == single, torch == ONNX, volume path, output range)")
    p.add_argument("model", help=".onnx file (its <stem>.torch.npz sidecar is used when present)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="pass when max|err| <= tolerance * max(1, max|reference|) (default 1e-4)")
    p.add_argument("--frames", type=int, default=2000, help="random input frames (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the frames and chunk sizes")
    p.add_argument("--providers", default=None,
                   help="comma-separated execution providers (tensorrt,cuda,cpu); default: all available")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=run)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def format_report(report: dict[str, Any]) -> str:
    """The report as a small text table."""
    comps = report["comparisons"]
    width = max([len(c["name"]) for c in comps] + [10])
    lines = [f"{'comparison':<{width}}  {'max |err|':>10}  {'max rel':>10}  result"]
    for c in comps:
        res = "ok" if c["ok"] else "FAIL" + (f" ({c['error']})" if c.get("error") else "")
        lines.append(f"{c['name']:<{width}}  {c['max_abs']:>10.3g}  {c['max_rel']:>10.3g}  {res}")
    for s in report["skipped"]:
        lines.append(f"skipped: {s['name']}: {s['reason']}")
    providers = ", ".join(f"{k} → {v}" for k, v in report["providers"].items())
    lines.append(f"providers: {providers or 'none ran'}; {report['frames']} frames in "
                 f"{report['chunks']} chunks, seed {report['seed']}")
    verdict = "PASS" if report["ok"] else "FAIL"
    lines.append(f"largest error: {report['max_abs']:.3g} abs, {report['max_rel']:.3g} rel "
                 f"(tolerance {report['tolerance']:g}) → {verdict}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Verify, print the table (or JSON), return 0 (pass) or 1 (fail)."""
    from rtdecode.nn.verify import verify_model
    from rtdecode.tms.m2m_model import is_m2m_file

    providers = [p.strip() for p in args.providers.split(",") if p.strip()] if args.providers else None
    if is_m2m_file(args.model):  # an event model (M2M-Net): stateless, volume in (docs/m2m.md)
        from rtdecode.tms.m2m_verify import verify_m2m

        report = verify_m2m(args.model, seed=args.seed, tolerance=args.tolerance)
    else:
        report = verify_model(args.model, providers=providers, frames=args.frames, seed=args.seed,
                              tolerance=args.tolerance)
    if args.json:
        print(json.dumps(_jsonable(report), indent=2))
    else:
        print(format_report(report))
    return 0 if report["ok"] else 1
