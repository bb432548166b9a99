"""Torch layers and models of the seed papers, with streaming ``step`` and ONNX export.

Needs the ``train`` extra (torch). Nothing here is imported by the daemon's runtime;
the names below are loaded lazily so ``import rtdecode.nn`` alone does not import torch.

- :mod:`rtdecode.nn.layers`: :class:`CausalConv1d` and the streaming container protocol.
- :mod:`rtdecode.nn.gamma`: :class:`GammaConv1d` (seed 000's Gamma-function kernels).
- :mod:`rtdecode.nn.models`: :class:`GammaCNN`, :class:`LinearDecoder`, :class:`SConvNet`,
  :class:`AllConvNet`, architecture specs.
- :mod:`rtdecode.nn.recurrent`: :class:`GRUDecoder`, :class:`LSTMDecoder` (seed 003), with
  explicit hidden state.
- :mod:`rtdecode.nn.checkpoint`: weights as ``.npz`` + JSON spec (no pickle).
- :mod:`rtdecode.nn.export`: single-step streaming ONNX export with rtdecode metadata.
- :mod:`rtdecode.nn.verify`: torch vs ONNX offline vs ONNX streaming parity report.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CausalConv1d": "rtdecode.nn.layers",
    "StreamingModule": "rtdecode.nn.layers",
    "StreamingSequential": "rtdecode.nn.layers",
    "GammaConv1d": "rtdecode.nn.gamma",
    "GammaCNN": "rtdecode.nn.models",
    "LinearDecoder": "rtdecode.nn.models",
    "SConvNet": "rtdecode.nn.models",
    "AllConvNet": "rtdecode.nn.models",
    "GRUDecoder": "rtdecode.nn.recurrent",
    "LSTMDecoder": "rtdecode.nn.recurrent",
    "measure_memory": "rtdecode.nn.recurrent",
    "count_parameters": "rtdecode.nn.models",
    "describe": "rtdecode.nn.models",
    "model_to_spec": "rtdecode.nn.models",
    "model_from_spec": "rtdecode.nn.models",
    "save_checkpoint": "rtdecode.nn.checkpoint",
    "load_checkpoint": "rtdecode.nn.checkpoint",
    "export_streaming": "rtdecode.nn.export",
    "export_checkpoint": "rtdecode.nn.export",
    "verify_model": "rtdecode.nn.verify",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rtdecode.nn' has no attribute {name!r}")
