"""An exported M2M-Net's spec rebuilds the network it was written from: the sidecar reload (what
``rtdecode verify`` compares the ONNX graph with) must use each mapper's own hidden activations,
whatever ``[mapper] hidden`` and ``residual_hidden`` were — not a fixed ReLU / linear pair."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rtdecode.nn.m2m.export import build_net  # noqa: E402
from rtdecode.nn.m2m.model import Encoder, M2MNet, Mapper  # noqa: E402

CODE = (8, 8, 8)


def _net(hidden: dict[str, str]) -> tuple[M2MNet, dict]:
    torch.manual_seed(0)
    outs = {"direct": ("sigmoid", 5), "synergy": ("sigmoid", 3), "residual": ("tanh", 5)}
    members = [{name: Mapper(CODE, n, 3, out, hidden[name], (2, 4, 4), 8, 0.0)  # type: ignore[arg-type]
                for name, (out, n) in outs.items()}]
    scaling = {"in_lo": torch.tensor(0.0), "in_span": torch.tensor(1.0), "code_lo": torch.tensor(-1.0),
               "code_span": torch.tensor(2.0), "out_lo": torch.zeros(5), "out_span": torch.ones(5)}
    net = M2MNet(Encoder((2, 4)), members, torch.rand(3, 5), scaling, None).eval()
    for p in net.parameters():  # make every activation matter: weights of both signs, no dead ReLU
        p.data.normal_(0.0, 0.5)
    spec = {"code_shape": list(CODE), "depth": 3, "mappers": {k: n for k, (_, n) in outs.items()},
            "members": 1, "mapper_channels": [2, 4, 4], "dense": 8, "dropout": 0.0, "n_out": 5,
            "synergies": 3, "encoder_channels": [2, 4], "firing": None, "hidden": hidden}
    return net, spec


@pytest.mark.parametrize("hidden", [
    {"direct": "relu", "synergy": "relu", "residual": "linear"},
    {"direct": "linear", "synergy": "linear", "residual": "relu"},
])
def test_rebuilt_net_gives_the_same_outputs(hidden: dict[str, str]) -> None:
    net, spec = _net(hidden)
    again = build_net(spec, net.state_dict())
    x = torch.rand(2, 32, 32, 32)
    with torch.no_grad():
        for a, b in zip(net(x), again(x), strict=True):
            torch.testing.assert_close(a, b)


def test_a_spec_without_hidden_is_the_original_relu_and_linear_pair() -> None:
    net, spec = _net({"direct": "relu", "synergy": "relu", "residual": "linear"})
    del spec["hidden"]
    again = build_net(spec, net.state_dict())
    x = torch.rand(1, 32, 32, 32)
    with torch.no_grad():
        for a, b in zip(net(x), again(x), strict=True):
            torch.testing.assert_close(a, b)
