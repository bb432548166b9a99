"""Fixtures shared by integration modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def m2m_tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``configs/train/m2m_tiny.toml`` trained once per session: its results and the exported model."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from rtdecode.nn.m2m.config import load_m2m_config
    from rtdecode.nn.m2m.run import train_from_config

    out = tmp_path_factory.mktemp("m2m")
    res = train_from_config(load_m2m_config(ROOT / "configs" / "train" / "m2m_tiny.toml"), out)
    return {"out": out, "res": res, "model": Path(res["shipped"]["path"])}
