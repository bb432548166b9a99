"""Where the torch checkpoint of an exported model lives (no torch import here)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SIDECAR_SUFFIX", "sidecar_path"]

#: Suffix that replaces ``.onnx`` for the torch checkpoint written at export.
SIDECAR_SUFFIX = ".torch.npz"


def sidecar_path(onnx_path: str | Path) -> Path:
    """The torch checkpoint written next to an exported model: ``<stem>.torch.npz``."""
    p = Path(onnx_path)
    return p.with_name(p.stem + SIDECAR_SUFFIX)
