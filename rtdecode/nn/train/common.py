"""Helpers shared by the fitting loops: seeding, progress bars, frame tensors."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["frames_tensor", "progress_bar", "seed_all"]


def seed_all(seed: int) -> None:
    """Seed torch (weights, dropout, batch order use their own seeded generators)."""
    torch.manual_seed(int(seed))


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar (disabled unless ``enabled``), usable as a context manager."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


def frames_tensor(x: np.ndarray) -> Tensor:
    """Independent frames as a batch of one-frame sequences: (N, C) → float32 (N, C, 1)."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, :, None]
