"""Pipeline fallbacks for model failures (a real ONNX Runtime session that is closed, a deadline
no call can meet) and the safe-value config fields."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rtdecode.config import DecoderConfig, load_config
from rtdecode.errors import ConfigError
from rtdecode.service.pipeline import Pipeline
from rtdecode.types import Flags
from tests.modelfactory import linear_model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return linear_model(tmp_path / "m.onnx", rate_hz=100.0, channels=3, lags=2)


def _x(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)).astype(np.float32), np.arange(n) / 100.0


def test_lost_session_falls_back_per_decoder_and_logs_once_per_episode(
        model: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = Pipeline([DecoderConfig(name="h", model=model, on_failure="hold"),
                  DecoderConfig(name="z", model=model, on_failure="zero")], 100.0, 3).open()
    good = {o.name: o.y[-1].copy() for o in p.process(*_x(20))}
    for d in p.decoders:
        d.model.close()  # every step now raises
    caplog.set_level(logging.INFO, logger="rtdecode.service.pipeline")
    for k in range(3):
        h, z = p.process(*_x(10, k + 1))
        assert (h.flags == Flags.DEGRADED | Flags.HOLD).all() and (h.y == good["h"]).all()
        assert (z.flags == Flags.DEGRADED).all() and not z.y.any()
    for d in p.decoders:
        d.model.open()
    h, z = p.process(*_x(10, 9))
    assert not (h.flags & Flags.DEGRADED).any() and not (z.flags & Flags.DEGRADED).any()
    msgs = [r.getMessage() for r in caplog.records]
    for name in ("h", "z"):
        assert sum(m.startswith(f"decoder {name} failing") for m in msgs) == 1
        assert sum(m.startswith(f"decoder {name} recovered after 3 failed calls") for m in msgs) == 1
    desc = {d["name"]: d for d in p.describe()}
    assert desc["h"]["failures"] == 3 and desc["h"]["failure_episodes"] == 1
    assert not desc["h"]["failing"]


def test_missed_deadline_is_a_failure(model: Path) -> None:
    p = Pipeline([DecoderConfig(name="d", model=model, deadline_ms=1e-9)], 100.0, 3).open()
    (o,) = p.process(*_x(10))
    assert (o.flags & Flags.DEGRADED).all() and np.isfinite(o.y).all()
    assert p.decoders[0].deadline_misses == 1 and p.decoders[0].failing
    (o,) = p.process(np.zeros((0, 3), np.float32), np.zeros(0))  # no frames: no call, no miss
    assert p.decoders[0].deadline_misses == 1


@pytest.mark.parametrize(("service", "match"), [
    ({"safe_vector": [0.0, float("nan")]}, "finite"),
    ({"safe_value": "nearest"}, "service.safe_value"),
    ({"on_reconnect": "keep"}, "service.on_reconnect"),
])
def test_safe_value_fields_are_validated(model: Path, service: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as e:
        load_config(data={"source": {"name": "x"}, "decoders": [{"name": "d", "model": str(model)}],
                          "service": service})
    assert e.value.exit_code == 2
