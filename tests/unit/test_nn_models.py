"""The seed papers' models: streaming parity, parameter counts, specs and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtdecode.errors import ModelError  # noqa: E402
from rtdecode.nn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rtdecode.nn.gamma import GammaConv1d  # noqa: E402
from rtdecode.nn.layers import CausalConv1d, stream_chunks  # noqa: E402
from rtdecode.nn.models import (  # noqa: E402
    AllConvNet,
    FrameMLP,
    GammaCNN,
    LinearDecoder,
    SConvNet,
    StackedDecoder,
    count_parameters,
    describe,
    model_from_spec,
    model_to_spec,
    streaming_core,
)
from tests.unit.test_nn_layers import assert_stream_equals_offline, layer_inputs  # noqa: E402


def tiny_gamma_cnn(variant: str = "gamma", rate_hz: float = 100.0, **kw) -> GammaCNN:
    return GammaCNN(5, rate_hz, n_sessions=2, feature_sizes=(4, 3), shared_sizes=(3, 2), variant=variant,
                    **kw)


@pytest.mark.parametrize(("variant", "rate_hz"), [("gamma", 100.0), ("gamma", 1000.0), ("free", 100.0)])
def test_gamma_cnn_streams_like_offline_for_each_session(variant: str, rate_hz: float) -> None:
    torch.manual_seed(0)
    model = tiny_gamma_cnn(variant, rate_hz).eval()
    taps = round(0.3 * rate_hz)
    assert model.receptive_field == 1 + 2 * (taps - 1)
    assert model.state_shapes(1) == [(1, 3, taps - 1), (1, 3, taps - 1)]
    x = torch.randn(1, 5, int(2.2 * model.receptive_field))
    outs = []
    for session in (0, 1):
        core = model.as_streaming(session)
        with torch.no_grad():
            torch.testing.assert_close(core(x), model(x, session=session))
            y_step, _ = model.step(x, model.zero_states(1), session=session)
            torch.testing.assert_close(y_step, model(x, session=session), atol=1e-5, rtol=1e-5)
        states = assert_stream_equals_offline(core, x, seed=session)
        for (layer, inp), st in zip(layer_inputs(core, x), states, strict=True):
            torch.testing.assert_close(st, inp[:, :, -layer.state_frames:])
        outs.append(model(x, session=session))
    assert not torch.allclose(outs[0], outs[1])  # separate feature stacks
    with pytest.raises(ModelError, match="session"):
        model(x, session=2)


def test_stacked_decoder_mixes_members_and_streams_like_offline() -> None:
    torch.manual_seed(1)
    g1, g2 = tiny_gamma_cnn().eval(), tiny_gamma_cnn("free", free_taps=4).eval()
    lin = LinearDecoder(5, 2, 7).eval()
    w, b = torch.randn(3, 6), torch.randn(3)
    stack = StackedDecoder.from_members([g1, g2, lin], w, b)
    assert stack.out_channels == 3 and stack.in_channels == 5
    assert stack.receptive_field == max(g1.receptive_field, g2.receptive_field, lin.receptive_field)
    assert stack.state_shapes(1) == g1.state_shapes(1) + g2.state_shapes(1) + lin.state_shapes(1)
    assert count_parameters(stack) == sum(map(count_parameters, (g1, g2, lin))) + w.numel() + b.numel()
    x = torch.randn(1, 5, 3 * stack.receptive_field)
    with torch.no_grad():
        want = (torch.einsum("kc,bct->bkt", w, torch.cat([g1(x), g2(x), lin(x)], dim=1))
                + b[None, :, None])
        torch.testing.assert_close(stack(x), want, atol=1e-5, rtol=1e-5)
    assert_stream_equals_offline(stack, x)
    with pytest.raises(ModelError, match="expected 5"):
        stack.step(x, [])


def test_stacked_decoder_rejects_mismatched_members() -> None:
    with pytest.raises(ModelError, match="different input sizes"):
        StackedDecoder([model_to_spec(LinearDecoder(3, 2, 2)), model_to_spec(LinearDecoder(4, 2, 2))], 2)
    conv = model_to_spec(SConvNet("A", (4, 3), 3, widths=(2, 3), fc=4))
    with pytest.raises(ModelError, match="mixes frame classifiers and regression"):
        StackedDecoder([conv, model_to_spec(LinearDecoder(12, 3, 2))], 3)
    inner = StackedDecoder([model_to_spec(LinearDecoder(3, 2, 2))], 2)
    with pytest.raises(ModelError, match="regression models .* or frame classifiers"):
        StackedDecoder([model_to_spec(inner)], 2)
    with pytest.raises(ModelError, match="at least one member"):
        StackedDecoder([], 2)


def test_average_of_frame_classifiers_is_their_mean_logits() -> None:
    torch.manual_seed(2)
    members = [FrameMLP(6, 4, hidden=(5,)).eval() for _ in range(3)]
    ens = StackedDecoder.average(members).eval()
    assert ens.out_channels == 4 and ens.receptive_field == 1 and ens.state_shapes(1) == []
    x = torch.randn(2, 6, 9)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), torch.stack([m(x) for m in members]).mean(0), atol=1e-6, rtol=1e-6)
    assert_stream_equals_offline(ens, x)
    again = model_from_spec(model_to_spec(ens))  # the sidecar's round trip keeps the members' kind
    assert isinstance(again, StackedDecoder) and all(isinstance(m, FrameMLP) for m in again.members)


def test_gamma_cnn_paper_defaults() -> None:
    model = GammaCNN(27, 100.0)
    kinds = [type(m).__name__ for m in model.shared.layers]
    assert kinds == ["GammaConv1d", "LeakyReLU", "GammaConv1d", "LeakyReLU", "GammaConv1d"]
    assert [m.out_channels for m in model.features[0].layers if isinstance(m, CausalConv1d)] == [21, 15, 9]
    assert all(m.taps == 30 for m in model.shared.layers if isinstance(m, GammaConv1d))
    assert model.out_channels == 1 and model.receptive_field == 88
    free = GammaCNN(27, 100.0, variant="free", free_taps=10)
    assert [m.taps for m in free.shared.layers if isinstance(m, CausalConv1d)] == [10, 10, 10]
    assert GammaCNN(27, 1000.0, variant="free").receptive_field == 1 + 3 * 299


def test_linear_decoder_streams_like_offline() -> None:
    torch.manual_seed(1)
    model = LinearDecoder(4, 2, taps=7)
    x = torch.randn(1, 4, 200)
    states = assert_stream_equals_offline(model, x, seed=3)
    torch.testing.assert_close(states[0], x[:, :, -6:])
    assert model.receptive_field == 7 and model.state_shapes() == [(1, 4, 6)]
    assert LinearDecoder(4, 2, taps=1).state_shapes() == []


def test_count_parameters_matches_a_hand_count() -> None:
    # 2 sessions × (5·4+4 + 4·3+3) feature weights, then Gamma 3→3 and 3→2: (α, β, t0) per pair + bias
    g = tiny_gamma_cnn("gamma")
    assert count_parameters(g) == 2 * (24 + 15) + (3 * 9 + 3) + (3 * 6 + 2)
    f = tiny_gamma_cnn("free", free_taps=10)
    assert count_parameters(f) == 2 * (24 + 15) + (3 * 3 * 10 + 3) + (3 * 2 * 10 + 2)
    assert count_parameters(LinearDecoder(4, 2, taps=7)) == 4 * 2 * 7 + 2
    # S-ConvNet A on a 4×3 grid, widths (2, 3), FC 5, 4 classes:
    # input BN 2 + conv 1·2·9 + BN 4 + conv 2·3·9 + BN 6 + FC 3·12·5 + BN 10 + out 5·4+4
    a = SConvNet("A", (4, 3), 4, widths=(2, 3), fc=5)
    assert count_parameters(a) == 2 + 18 + 4 + 54 + 6 + 180 + 10 + 24
    assert describe(a)["parameters"] == count_parameters(a)


@pytest.mark.parametrize("grid", [(16, 8), (16, 4), (13, 5), (3, 1)])
@pytest.mark.parametrize("make", [
    lambda g: SConvNet("A", g, 5, widths=(4, 6), fc=8),
    lambda g: SConvNet("B", g, 5, widths=(4, 6), fc=8, pool="max"),
    lambda g: SConvNet("C", g, 5, widths=(4, 6), fc=8),
    lambda g: AllConvNet(g, 5, widths=(4, 6)),
], ids=["A", "B-maxpool", "C", "all-conv"])
def test_frame_classifiers_are_per_frame(grid: tuple[int, int], make) -> None:
    torch.manual_seed(2)
    model = make(grid).eval()
    h, w = grid
    assert model.in_channels == h * w and model.receptive_field == 1 and model.state_shapes() == []
    x = torch.randn(2, h * w, 9)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 5, 9)
        # frame t is the image x[:, :, t] laid out row-major
        img = x[1, :, 4].reshape(1, 1, h, w)
        torch.testing.assert_close(y[1, :, 4], model.classify(img)[0], atol=1e-5, rtol=1e-5)
        ys, states = stream_chunks(model, x, [1, 3, 0, 2])
    torch.testing.assert_close(ys, y, atol=1e-5, rtol=1e-5)
    assert states == []


def test_sconvnet_layout_follows_the_paper() -> None:
    def convs(m):
        return [(c.kernel_size[0], c.stride[0], c.out_channels) for c in m.modules()
                if isinstance(c, torch.nn.Conv2d)]
    assert convs(SConvNet("A")) == [(3, 1, 32), (3, 1, 64)]
    assert convs(SConvNet("B")) == [(3, 1, 32), (1, 1, 32), (3, 1, 64), (1, 1, 64)]
    assert convs(SConvNet("C")) == [(3, 1, 32), (3, 2, 32), (3, 1, 64), (3, 2, 64)]
    assert convs(AllConvNet(n_classes=8)) == [(3, 1, 64), (3, 1, 64), (3, 2, 64), (3, 1, 128),
                                              (3, 1, 128), (3, 2, 128), (1, 1, 128), (1, 1, 8)]
    a = SConvNet("A", (16, 8), 8)
    assert a.head[1].in_features == 64 * 16 * 8 and a.head[1].out_features == 256
    assert SConvNet().config["dropout"] == 0.35 and AllConvNet().config["dropout"] == 0.25
    with pytest.raises(ModelError, match="variant"):
        SConvNet("D")
    with pytest.raises(ModelError, match="pool"):
        SConvNet("C", pool="max")


MODELS = {
    "gamma": lambda: tiny_gamma_cnn("gamma"),
    "free": lambda: tiny_gamma_cnn("free", free_taps=4),
    "linear": lambda: LinearDecoder(3, 2, 5),
    "stacked": lambda: StackedDecoder.from_members([tiny_gamma_cnn(), LinearDecoder(5, 2, 3)],
                                                   torch.randn(2, 4), torch.randn(2)),
    "sconv-B": lambda: SConvNet("B", (4, 3), 3, widths=(2, 3), fc=4, pool="avg"),
    "allconv": lambda: AllConvNet((5, 3), 3, widths=(2, 3)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_spec_and_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = MODELS[name]()
    # make the batch-norm statistics non-trivial
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        model.train()
        with torch.no_grad():
            model(torch.rand(2, model.in_channels, 20) * 3)
    model.eval()
    spec = model_to_spec(model)
    rebuilt = model_from_spec(json.loads(json.dumps(spec)))
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}

    path = save_checkpoint(tmp_path / "m.npz", model, spec, {"rate_hz": 100.0, "note": [1, 2]})
    with np.load(path, allow_pickle=False) as data:  # no object arrays anywhere
        assert "__spec__" in data.files and all(data[k].dtype != object for k in data.files)
    loaded, spec2, extra = load_checkpoint(path)
    assert spec2 == spec and extra == {"rate_hz": 100.0, "note": [1, 2]} and not loaded.training
    x = torch.randn(1, model.in_channels, 40)
    with torch.no_grad():
        torch.testing.assert_close(streaming_core(loaded)(x), streaming_core(model)(x), rtol=0, atol=0)


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot read"):
        load_checkpoint(bad)
    path = save_checkpoint(tmp_path / "lin.npz", LinearDecoder(2, 1, 3))
    with np.load(path) as data:
        arrays = dict(data)
    arrays["conv.weight"] = np.zeros((1, 2, 4), np.float32)
    np.savez(tmp_path / "wrong.npz", **arrays)
    with pytest.raises(ModelError, match="do not fit"):
        load_checkpoint(tmp_path / "wrong.npz")
    with pytest.raises(ModelError, match="unknown model kind"):
        model_from_spec({"kind": "Transformer", "config": {}})


def test_describe_summarises_the_architecture() -> None:
    d = describe(tiny_gamma_cnn("gamma"))
    assert d["kind"] == "GammaCNN" and d["receptive_field"] == 59 and d["delay"] == 0
    assert d["state_shapes"] == [[1, 3, 29], [1, 3, 29]]
    assert any("GammaConv1d" in line for line in d["layers"])
    json.dumps(d)
