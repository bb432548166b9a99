"""Every shipped model in ``models/`` passes ``rtdecode verify``, has a card and stays small.

Streaming models lie in ``models/`` itself; event models (M2M-Net) in ``models/tms/``, out of
the way of the tests that stream every model in ``models/*.onnx``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rtdecode.commands import verify as verify_cmd
from rtdecode.runtime.streaming import read_metadata
from rtdecode.tms.m2m_model import M2mModel, is_m2m_file

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted([*(ROOT / "models").glob("*.onnx"), *(ROOT / "models").glob("tms/*.onnx")])
MAX_BYTES = 2 * 1024 * 1024


def test_models_folder_is_not_empty() -> None:
    assert MODELS, "no models/*.onnx (run `make models`)"


@pytest.mark.parametrize("path", MODELS, ids=[str(p.relative_to(ROOT / "models")) for p in MODELS])
def test_shipped_model_verifies_and_has_a_card(path: Path, capsys) -> None:
    parser = argparse.ArgumentParser(prog="rtdecode")
    verify_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["verify", str(path), "--frames", "600", "--providers", "cpu"])
    code = args.func(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS" in out
    assert path.stat().st_size < MAX_BYTES
    sidecar = path.with_name(path.stem + ".torch.npz")
    if sidecar.exists():
        assert sidecar.stat().st_size < MAX_BYTES
        assert "skipped: torch" not in out or "not installed" in out  # the torch comparison ran
    cards = [c for c in path.parent.glob("*.md")
             if c.stem == path.stem or path.name in c.read_text(encoding="utf-8")]
    assert cards, f"no model card for {path.name} (models/{path.stem}.md or a card naming it)"
    if sidecar.exists():  # trained by rtdecode: provenance and held-out metrics travel in the file
        meta = M2mModel(path).meta if is_m2m_file(path) else read_metadata(path)
        assert meta.provenance and meta.metrics
