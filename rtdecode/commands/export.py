"""``rtdecode export CHECKPOINT.npz --out MODEL.onnx``: a torch checkpoint → streaming ONNX.

The checkpoint (``rtdecode.nn.checkpoint``: weights + architecture spec, no pickle)
carries the metadata fields in its ``extra`` JSON: ``rate_hz``, ``channels``,
``preprocessing``, ``outputs``, ``task``, ``session``, ``provenance``, ``metrics``, ...
The sidecar ``<out stem>.torch.npz`` is written next to the model for ``rtdecode verify``.
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    p = sub.add_parser("export", help="export a torch checkpoint (.npz) as a streaming ONNX model")
    p.add_argument("checkpoint", help=".npz checkpoint written by rtdecode.nn.checkpoint.save_checkpoint")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--session", type=int, default=None,
                   help="GammaCNN session stack to export (default: the checkpoint's, else 0)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, export, print where the model went."""
    from rtdecode.nn.export import export_checkpoint
    from rtdecode.nn.sidecar import sidecar_path

    overrides = {"session": args.session} if args.session is not None else None
    out = export_checkpoint(args.checkpoint, args.out, opset=args.opset, overrides=overrides)
    print(f"wrote {out} (torch sidecar {sidecar_path(out).name}); check it with `rtdecode verify {out}`")
    return 0
