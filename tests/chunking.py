"""Random chunkings of a recording, for streaming == offline tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def random_cuts(n: int, rng: np.random.Generator,
                sizes: Sequence[int] = (0, 1, 2, 3, 7, 31, 120)) -> list[int]:
    """Chunk boundaries ``0 = c0 ≤ c1 ≤ … = n`` with steps drawn from ``sizes`` (empty chunks too)."""
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.choice(list(sizes)))))
    return cuts


def run_in_chunks(step: Callable[[np.ndarray], np.ndarray], x: np.ndarray, cuts: list[int]) -> np.ndarray:
    """``step`` over ``x[c_i:c_{i+1}]`` for every chunk, outputs concatenated."""
    return np.concatenate([step(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
