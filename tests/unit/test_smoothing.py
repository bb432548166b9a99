"""Causal probability smoothing: chunking invariance, reference results, declared delay."""

from __future__ import annotations

import numpy as np
import pytest

from rtdecode.decoders.smoothing import ProbabilitySmoother, window_frames
from rtdecode.errors import ConfigError


def _ref(p: np.ndarray, w: int, method: str) -> np.ndarray:
    v = np.eye(p.shape[1])[p.argmax(1)] if method == "majority" else p
    return np.stack([v[max(0, i - w + 1):i + 1].mean(0) for i in range(len(p))])


@pytest.mark.parametrize("method", ["average", "majority"])
def test_equals_reference_in_any_chunking(method: str) -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=500)
    s = ProbabilitySmoother(5, 17, method)
    cuts = np.sort(rng.choice(np.arange(1, 500), 40, replace=False))
    out = np.concatenate([s.step(c) for c in np.split(p, cuts)])
    np.testing.assert_allclose(out, _ref(p, 17, method), atol=1e-6)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


def test_delay_and_window() -> None:
    assert ProbabilitySmoother(3, 101).delay_frames == 50
    assert window_frames(0.1, 1000.0) == 100 and window_frames(0.0001, 100.0) == 1
    with pytest.raises(ConfigError):
        ProbabilitySmoother(3, 0)
