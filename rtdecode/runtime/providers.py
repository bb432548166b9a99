"""Execution-provider selection for ONNX Runtime (TensorRT → CUDA → CPU)."""

from __future__ import annotations

import logging

import onnxruntime as ort

from rtdecode.errors import ModelError

logger = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def available_providers() -> list[str]:
    """Short names (tensorrt / cuda / cpu) of the providers this onnxruntime build offers."""
    avail = set(ort.get_available_providers())
    return [short for short, full in PROVIDER_NAMES.items() if full in avail]


def choose_providers(preference: list[str], *, require_first: bool = False) -> list[str]:
    """Return ONNX Runtime provider names to try, in order, always ending with CPU.

    Parameters
    ----------
    preference : list of str
        Short names, most preferred first.
    require_first : bool
        Raise if the first preferred provider is not available (no silent fallback).

    Raises
    ------
    ModelError
        When ``require_first`` is set and the provider is missing, or a name is unknown.
    """
    avail = available_providers()
    chosen = []
    for short in preference:
        if short not in PROVIDER_NAMES:
            raise ModelError(f"unknown execution provider {short!r}",
                             f"use one of {sorted(PROVIDER_NAMES)}")
        if short in avail:
            chosen.append(PROVIDER_NAMES[short])
    if require_first and preference[0] not in avail:
        raise ModelError(
            f"execution provider {preference[0]!r} was required but this onnxruntime offers {avail}",
            "install onnxruntime-gpu (see docs/deployment.md) or set require_provider = false "
            "to allow a fallback",
        )
    if PROVIDER_NAMES["cpu"] not in chosen:
        chosen.append(PROVIDER_NAMES["cpu"])
    return chosen
