"""torch → streaming ONNX: ONNX Runtime (the daemon's StreamingModel) equals torch offline.

Also: metadata round trip, standard operators only, ``rtdecode verify`` / ``rtdecode export``
exit codes, and an exported GammaCNN behind a real preprocessing chain through
``predict_recording`` (the daemon's computation, offline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from rtdecode.commands import export as export_cmd  # noqa: E402
from rtdecode.commands import verify as verify_cmd  # noqa: E402
from rtdecode.commands.predict import predict_recording  # noqa: E402
from rtdecode.dsp import build_chain, chains_equal  # noqa: E402
from rtdecode.errors import ModelError, RtdecodeError  # noqa: E402
from rtdecode.io.recording import Recording  # noqa: E402
from rtdecode.nn.checkpoint import save_checkpoint  # noqa: E402
from rtdecode.nn.export import export_streaming  # noqa: E402
from rtdecode.nn.models import AllConvNet, GammaCNN, LinearDecoder, SConvNet, streaming_core  # noqa: E402
from rtdecode.nn.sidecar import sidecar_path  # noqa: E402
from rtdecode.nn.verify import verify_model  # noqa: E402
from rtdecode.runtime.metadata import OutputSpec  # noqa: E402
from rtdecode.runtime.streaming import StreamingModel, read_metadata  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WIENER = ROOT / "models" / "cortex_wiener.onnx"


def _cli(*argv: str) -> int:
    """Run a sub-command as `rtdecode` does (errors → their exit codes)."""
    from rtdecode import cli

    if "verify" in cli.COMMANDS and "export" in cli.COMMANDS:
        return cli.main(list(argv))
    parser = argparse.ArgumentParser(prog="rtdecode")
    sub = parser.add_subparsers(dest="command")
    verify_cmd.register(sub)
    export_cmd.register(sub)
    args = parser.parse_args(list(argv))
    try:
        return int(args.func(args))
    except RtdecodeError as exc:
        return exc.exit_code


def _chunks(n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    cuts = [0, 1, 2]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.choice([0, 1, 3, 7, 40, 250]))))
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _with_bn_stats(model):
    """Give batch-norm layers non-trivial running statistics, then eval()."""
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.rand(4, model.in_channels, 16) * 2 - 0.5)
    return model.eval()


CASES = {
    "gamma-100Hz": (lambda: GammaCNN(4, 100.0, n_sessions=2, feature_sizes=(5, 3), shared_sizes=(3, 2)),
                    100.0, "regression", 1),
    "gamma-1kHz": (lambda: GammaCNN(4, 1000.0, feature_sizes=(3,), shared_sizes=(2, 1)),
                   1000.0, "regression", 0),
    "free-cnn": (lambda: GammaCNN(4, 100.0, feature_sizes=(3,), shared_sizes=(3, 1), variant="free",
                                  free_taps=10), 100.0, "regression", 0),
    "linear": (lambda: LinearDecoder(4, 2, taps=6), 50.0, "regression", 0),
    "sconvnet-A": (lambda: SConvNet("A", (4, 3), 5, widths=(4, 6), fc=8), 2048.0, "classification", 0),
    "sconvnet-B": (lambda: SConvNet("B", (4, 3), 5, widths=(4, 6), fc=8), 2048.0, "classification", 0),
    "sconvnet-C": (lambda: SConvNet("C", (5, 3), 5, widths=(4, 6), fc=8), 2048.0, "classification", 0),
    "allconvnet": (lambda: AllConvNet((5, 3), 5, widths=(4, 6)), 2048.0, "classification", 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_exported_model_streams_like_torch_offline(case: str, tmp_path: Path) -> None:
    make, rate, task, session = CASES[case]
    torch.manual_seed(0)
    model = _with_bn_stats(make())
    core = streaming_core(model, session)
    c, k = core.in_channels, core.out_channels
    outputs = [OutputSpec(name=f"o{i}", unit="a.u.") for i in range(k)]
    path = export_streaming(model, tmp_path / f"{case}.onnx", rate_hz=rate, channels=c, preprocessing=[],
                            outputs=outputs, task=task, session=session,
                            provenance={"data": "random"}, metrics={"r2": 0.5})
    assert sidecar_path(path).exists()

    rng = np.random.default_rng(1)
    n = max(300, 3 * core.receptive_field)
    x = rng.standard_normal((n, c)).astype(np.float32)
    with torch.no_grad():
        ref = core(torch.from_numpy(x.T[None].copy()))
        if task == "classification":
            ref = torch.softmax(ref, dim=1)
    ref = ref[0].numpy().T
    with StreamingModel(path) as m:
        streamed = np.concatenate([m.step(x[a:b]) for a, b in _chunks(n, seed=2)])
    np.testing.assert_allclose(streamed, ref, rtol=1e-4, atol=1e-5)
    if task == "classification":
        np.testing.assert_allclose(streamed.sum(axis=1), 1.0, atol=1e-5)
        assert (streamed >= 0).all()

    meta = read_metadata(path)
    assert meta.task == task and meta.model_channels == c and meta.channels == c
    assert meta.rate_hz == rate and meta.model_rate_hz == rate
    assert [o.name for o in meta.outputs] == [o.name for o in outputs]
    assert meta.receptive_field == core.receptive_field and meta.delay == 0
    assert [(s.name, s.shape) for s in meta.states] == \
        [(f"state_{i}", list(s)) for i, s in enumerate(core.state_shapes(1))]
    assert meta.provenance == {"data": "random"} and meta.metrics == {"r2": 0.5}
    if task == "classification":
        assert meta.grid_shape == list(model.grid_shape)

    proto = onnx.load(str(path))
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}
    assert {o.domain for o in proto.opset_import} <= {"", "ai.onnx"}
    assert "Conv" in {n.op_type for n in proto.graph.node}


def _tamper(path: Path) -> None:
    proto = onnx.load(str(path))
    init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = onnx.numpy_helper.to_array(init).copy()
    arr += 0.05
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(proto, str(path))


def test_verify_passes_fails_on_tampered_weights_and_refuses_bad_files(tmp_path: Path, capsys) -> None:
    torch.manual_seed(3)
    model = GammaCNN(3, 100.0, feature_sizes=(3,), shared_sizes=(2, 1))
    path = export_streaming(model, tmp_path / "g.onnx", rate_hz=100.0, channels=3, preprocessing=[],
                            outputs=["emg"])
    rep = verify_model(path, frames=500, seed=4)
    assert rep["ok"] and rep["skipped"] == [] and rep["providers"]["cpu"] == "CPUExecutionProvider"
    names = [c["name"] for c in rep["comparisons"]]
    assert "onnx streaming vs onnx offline [cpu]" in names
    assert "onnx offline [cpu] vs torch offline" in names
    assert "final state_0 streaming [cpu] vs torch step" in names
    assert rep["max_abs"] < 1e-4

    assert _cli("verify", str(path), "--frames", "600") == 0
    assert "PASS" in capsys.readouterr().out
    _tamper(path)
    assert _cli("verify", str(path), "--frames", "600", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    bad = [c["name"] for c in report["comparisons"] if not c["ok"]]
    assert bad and all("torch" in b for b in bad)  # ONNX streaming still equals ONNX offline

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00 not onnx" * 20)
    assert _cli("verify", str(garbage)) == ModelError.exit_code == 4
    with pytest.raises(ModelError):
        verify_model(tmp_path / "missing.onnx")


def test_verify_shipped_numpy_model_skips_torch(capsys) -> None:
    if not WIENER.exists():
        pytest.skip(f"{WIENER} not built (make models)")
    assert _cli("verify", str(WIENER), "--frames", "500") == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "no torch checkpoint" in out
    rep = verify_model(WIENER, frames=300)
    assert rep["ok"] and rep["skipped"][0]["reason"].startswith("no torch checkpoint")


def test_export_command_from_a_training_checkpoint(tmp_path: Path, capsys) -> None:
    torch.manual_seed(5)
    model = LinearDecoder(2, 1, taps=4)
    chain = [{"kind": "bin", "factor": 5, "reduce": "sum"}]
    ckpt = save_checkpoint(tmp_path / "run.npz", model, extra={
        "rate_hz": 500.0, "channels": 2, "preprocessing": chain,
        "outputs": [{"name": "vx", "unit": "cm/s"}], "task": "regression",
        "provenance": {"data": "unit test"}, "history": {"loss": [3.0, 2.0]}})
    out = tmp_path / "lin.onnx"
    assert _cli("export", str(ckpt), "--out", str(out)) == 0
    assert "wrote" in capsys.readouterr().out
    meta = read_metadata(out)
    assert meta.model_rate_hz == 100.0 and meta.rate_hz == 500.0 and chains_equal(meta.preprocessing, chain)
    assert meta.outputs[0].unit == "cm/s" and meta.provenance == {"data": "unit test"}
    assert _cli("verify", str(out), "--frames", "300") == 0

    no_fields = save_checkpoint(tmp_path / "bare.npz", model)
    assert _cli("export", str(no_fields), "--out", str(tmp_path / "x.onnx")) == 4


def test_export_refuses_a_model_that_does_not_fit_the_chain(tmp_path: Path) -> None:
    model = LinearDecoder(3, 1, taps=2)
    with pytest.raises(ModelError, match="channels"):
        export_streaming(model, tmp_path / "m.onnx", rate_hz=100.0, channels=4, preprocessing=[],
                         outputs=["y"])
    with pytest.raises(ModelError, match="output"):
        export_streaming(model, tmp_path / "m.onnx", rate_hz=100.0, channels=3, preprocessing=[],
                         outputs=["a", "b"])


def test_gamma_cnn_behind_a_real_chain_through_predict_recording(tmp_path: Path) -> None:
    """Raw 1 kHz signal → high-pass → RMS envelope → decimate to 100 Hz → GammaCNN."""
    torch.manual_seed(6)
    fs, channels = 1000.0, 4
    chain = [{"kind": "butter", "btype": "highpass", "order": 3, "cutoff_hz": 20.0},
             {"kind": "rms", "shape": "gaussian", "sigma_s": 0.01},
             {"kind": "decimate", "factor": 10}]
    model = GammaCNN(channels, 100.0, feature_sizes=(3,), shared_sizes=(2, 1)).eval()
    path = export_streaming(model, tmp_path / "g.onnx", rate_hz=fs, channels=channels, preprocessing=chain,
                            outputs=[{"name": "emg_envelope", "unit": "a.u."}])
    rng = np.random.default_rng(7)
    n = 4000
    burst = (np.sin(2 * np.pi * 0.7 * np.arange(n) / fs) > 0.3).astype(np.float32)
    x = (rng.standard_normal((n, channels)) * (1 + 3 * burst[:, None])).astype(np.float32)
    rec = Recording(x=x, fs=fs)

    res = predict_recording(path, rec)
    frames, _ = build_chain(chain, fs, channels).process(rec.x, rec.t)
    assert res["y"].shape == (frames.shape[0], 1) and frames.shape[0] == n // 10
    with torch.no_grad():
        ref = model(torch.from_numpy(frames.T[None].copy()))[0].numpy().T
    np.testing.assert_allclose(res["y"], ref, rtol=1e-4, atol=1e-5)
    assert res["names"] == ["emg_envelope"] and np.ptp(ref) > 0


def test_verify_runs_without_torch(tmp_path: Path) -> None:
    """The daemon machine has no torch: verify still checks ONNX and says why torch was skipped."""
    import subprocess
    import sys

    model = LinearDecoder(2, 1, taps=3)
    path = export_streaming(model, tmp_path / "lin.onnx", rate_hz=100.0, channels=2, preprocessing=[],
                            outputs=["y"])
    code = ("import sys, json; sys.modules['torch'] = None\n"
            "from rtdecode.nn.verify import verify_model\n"
            f"r = verify_model({str(path)!r}, frames=200)\n"
            "print(json.dumps({'ok': r['ok'], 'skipped': r['skipped']}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, check=True).stdout
    rep = json.loads(out.strip().splitlines()[-1])
    assert rep["ok"] and "torch is not installed" in rep["skipped"][0]["reason"]
