"""Model checkpoints without pickle: weights in an ``.npz`` plus the architecture as JSON.

Layout of the ``.npz`` (read with ``allow_pickle=False``):

- one array per ``state_dict`` key (parameters and buffers, e.g. batch-norm statistics);
- ``__spec__``: a string, the JSON architecture spec (:func:`rtdecode.nn.models.model_to_spec`);
- ``__extra__``: a string, JSON of anything else (export metadata fields, training history).
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rtdecode.errors import ModelError
from rtdecode.nn.models import model_from_spec, model_to_spec

logger = logging.getLogger(__name__)

__all__ = ["EXTRA_KEY", "SPEC_KEY", "load_checkpoint", "save_checkpoint"]

SPEC_KEY = "__spec__"
EXTRA_KEY = "__extra__"


def save_checkpoint(path: str | Path, model: nn.Module, spec: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write weights, architecture spec and extra JSON to ``path`` (``.npz``).

    Parameters
    ----------
    path : path
        Output file; ``.npz`` is the convention (numpy appends it when missing).
    model : nn.Module
        An rtdecode.nn model.
    spec : dict, optional
        Architecture spec; default ``model_to_spec(model)``.
    extra : dict, optional
        JSON-serialisable extras (e.g. the export metadata fields).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ModelError
        If ``spec`` or ``extra`` cannot be written as JSON.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    spec = spec if spec is not None else model_to_spec(model)
    try:
        spec_json = json.dumps(spec)
        extra_json = json.dumps(extra or {})
    except (TypeError, ValueError) as exc:
        raise ModelError(f"checkpoint spec / extra is not JSON-serialisable: {exc}",
                         "pass plain dicts, lists, strings and numbers") from None
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    clash = {SPEC_KEY, EXTRA_KEY} & set(arrays)
    if clash:
        raise ModelError(f"state_dict keys {sorted(clash)} clash with the checkpoint's reserved names",
                         "rename those parameters")
    arrays[SPEC_KEY] = np.array(spec_json)
    arrays[EXTRA_KEY] = np.array(extra_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    logger.info("wrote checkpoint %s (%s, %d arrays)", path, spec.get("kind"), len(arrays) - 2)
    return path


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path
        The ``.npz`` file.

    Returns
    -------
    model : nn.Module
        In eval mode, on the CPU.
    spec : dict
        The architecture spec.
    extra : dict
        The extra JSON.

    Raises
    ------
    ModelError
        If the file is missing, not an rtdecode checkpoint, or its weights do not fit the spec.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"checkpoint {path} does not exist", "check the path")
    fix = "the file is not an rtdecode checkpoint; write it with rtdecode.nn.checkpoint.save_checkpoint"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}", fix) from None
    if SPEC_KEY not in arrays:
        raise ModelError(f"checkpoint {path} has no '{SPEC_KEY}' entry", fix)
    try:
        spec = json.loads(str(arrays.pop(SPEC_KEY)))
        extra = json.loads(str(arrays.pop(EXTRA_KEY, np.array("{}"))))
    except json.JSONDecodeError as exc:
        raise ModelError(f"checkpoint {path}: invalid JSON in spec / extra: {exc}", fix) from None
    model = model_from_spec(spec)
    state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint {path}: weights do not fit the {spec.get('kind')} spec: {exc}",
                         "the weights and spec come from different models; re-save the checkpoint") from None
    model.eval()
    logger.debug("loaded checkpoint %s (%s)", path, spec.get("kind"))
    return model, spec, extra
