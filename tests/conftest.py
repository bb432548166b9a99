"""Shared fixtures: machine-scope LSL config, unique stream names, loopback endpoints, shared data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

# Every test that touches LSL uses the machine-scope config (loopback only). The
# project's own config is used unless the caller set LSLAPICFG explicitly.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if "LSLAPICFG" not in os.environ:
    _cfg = _SHARED / "lsl_api.cfg"
    if _cfg.exists():
        os.environ["LSLAPICFG"] = str(_cfg)

from rtdecode.lsl import pylsl  # noqa: E402,F401  (config must be set before liblsl loads)

SHARED_DATA = Path(os.environ.get("RTDECODE_SHARED_DATA", str(_SHARED / "data")))


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (set RTDECODE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def unique_name() -> str:
    """A stream name no other test uses, so parallel or leftover outlets never collide."""
    return f"rtdtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ipc_endpoint(tmp_path: Path) -> str:
    """A private ipc:// endpoint for one test."""
    return f"ipc://{tmp_path}/pub.sock"
