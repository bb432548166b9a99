"""Streaming layers: offline forward == random-chunk steps, states == last frames, Gamma kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from rtdecode.errors import ModelError  # noqa: E402
from rtdecode.nn.gamma import BETA_RANGE_PER_S, T0_RANGE_S, GammaConv1d, gamma_kernel  # noqa: E402
from rtdecode.nn.layers import (  # noqa: E402
    CausalConv1d,
    StreamingLayer,
    StreamingSequential,
    stream_chunks,
)

ATOL = 1e-5


def random_sizes(n: int, seed: int) -> list[int]:
    """Chunk sizes covering n frames: 1-frame chunks, empty chunks and large ones."""
    rng = np.random.default_rng(seed)
    sizes = [1, 0, 1]
    while sum(sizes) < n:
        sizes.append(int(rng.choice([0, 1, 2, 3, 5, 17, 64, 300])))
    return sizes


def assert_stream_equals_offline(module, x, seed: int = 0) -> list:
    with torch.no_grad():
        offline = module(x)
        streamed, states = stream_chunks(module, x, random_sizes(x.shape[2], seed))
    scale = max(1.0, float(offline.abs().max()))
    torch.testing.assert_close(streamed, offline, atol=ATOL * scale, rtol=1e-5)
    return states


def layer_inputs(stack: StreamingSequential, x):
    """The input of every stateful layer in an offline pass (to check the final states)."""
    inputs = []
    with torch.no_grad():
        for m in stack.layers:
            if isinstance(m, StreamingLayer) and m.state_frames:
                inputs.append((m, x))
            x = m(x)
    return inputs


@pytest.mark.parametrize(("taps", "dilation"), [(1, 1), (4, 1), (3, 4), (5, 2)])
def test_causal_conv_streams_like_offline(taps: int, dilation: int) -> None:
    torch.manual_seed(0)
    conv = CausalConv1d(3, 2, taps, dilation=dilation)
    x = torch.randn(2, 3, 400)
    states = assert_stream_equals_offline(conv, x, seed=taps)
    pad = (taps - 1) * dilation
    assert conv.receptive_field == pad + 1 and conv.delay == 0
    if pad:
        assert conv.state_shape(2) == (2, 3, pad)
        torch.testing.assert_close(states[0], x[:, :, -pad:])
    else:
        assert states == [] and conv.state_shapes() == []


def test_causal_conv_is_causal_and_zero_state_is_padding() -> None:
    torch.manual_seed(1)
    conv = CausalConv1d(2, 2, 5, dilation=2)
    x = torch.randn(1, 2, 50)
    with torch.no_grad():
        y = conv(x)
        x2 = x.clone()
        x2[:, :, 30:] += 10.0  # the future must not change the past
        torch.testing.assert_close(conv(x2)[:, :, :30], y[:, :, :30])
        y_step, _ = conv.step(x, torch.zeros(conv.state_shape(1)))
        torch.testing.assert_close(y_step, y)
        # an impulse at t = 0 reappears at lags 0, 2, 4, 6, 8 with the taps newest-first
        imp = torch.zeros(1, 2, 12)
        imp[0, 0, 0] = 1.0
        resp = conv(imp)[0, 0] - conv.bias[0]
        expected = torch.zeros(12)
        expected[[0, 2, 4, 6, 8]] = conv.weight[0, 0].flip(0)
        torch.testing.assert_close(resp, expected)


def test_stack_with_nonlinearities_streams_and_states_are_last_frames() -> None:
    torch.manual_seed(2)
    stack = StreamingSequential(CausalConv1d(3, 4, 3, dilation=2), nn.LeakyReLU(0.1),
                                CausalConv1d(4, 4, 1), nn.ELU(),
                                CausalConv1d(4, 2, 6))
    assert stack.receptive_field == 1 + 4 + 0 + 5
    assert stack.state_shapes(1) == [(1, 3, 4), (1, 4, 5)]
    x = torch.randn(1, 3, 300)
    states = assert_stream_equals_offline(stack, x, seed=5)
    for (layer, inp), st in zip(layer_inputs(stack, x), states, strict=True):
        torch.testing.assert_close(st, inp[:, :, -layer.state_frames:])


def test_stack_rejects_bad_layers_and_state_counts() -> None:
    with pytest.raises(ModelError, match="no streaming step"):
        StreamingSequential(CausalConv1d(2, 2, 3), nn.Conv1d(2, 2, 3))
    with pytest.raises(ModelError, match="channels"):
        StreamingSequential(CausalConv1d(2, 3, 3), CausalConv1d(2, 2, 3))
    stack = StreamingSequential(CausalConv1d(2, 2, 3))
    with pytest.raises(ModelError, match="state tensors"):
        stack.step(torch.zeros(1, 2, 4), [])
    with pytest.raises(ModelError, match="expects input of shape"):
        stack(torch.zeros(1, 3, 4))


@pytest.mark.parametrize("rate_hz", [100.0, 1000.0])
def test_gamma_layer_streams_like_offline(rate_hz: float) -> None:
    torch.manual_seed(3)
    g = GammaConv1d(3, 2, kernel_s=0.3, rate_hz=rate_hz)
    assert g.taps == round(0.3 * rate_hz)
    x = torch.randn(1, 3, int(2.5 * g.taps))
    states = assert_stream_equals_offline(g, x, seed=int(rate_hz))
    torch.testing.assert_close(states[0], x[:, :, -(g.taps - 1):])
    assert g.receptive_field == g.taps and g.delay == 0


def test_gamma_taps_scale_with_rate_and_kernel_shape_is_rate_independent() -> None:
    torch.manual_seed(4)
    slow = GammaConv1d(2, 2, 0.3, 100.0)
    fast = GammaConv1d(2, 2, 0.3, 1000.0)
    assert (slow.taps, fast.taps) == (30, 300)
    assert GammaConv1d(1, 1, 0.3, 250.0).taps == 75
    fast.load_state_dict(slow.state_dict())  # same α, β, t0: the same function of time
    w_slow, w_fast = slow.materialize().detach(), fast.materialize().detach()
    # taps at the same lag time carry F(t)·Δt: equal up to the Δt ratio
    torch.testing.assert_close(w_slow.flip(-1) * 0.1, w_fast.flip(-1)[..., ::10], rtol=1e-5, atol=1e-7)
    # the area (DC gain) is ≈ α at both rates
    for w in (w_slow, w_fast):
        torch.testing.assert_close(w.sum(-1), slow.alpha.detach(), rtol=0.08, atol=1e-3)


def test_gamma_materialized_conv_equals_layer() -> None:
    torch.manual_seed(5)
    g = GammaConv1d(3, 2, 0.05, 200.0)
    x = torch.randn(2, 3, 80)
    conv = g.to_causal_conv()
    assert conv.weight.shape == (2, 3, g.taps)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), g(x), rtol=0, atol=0)
        torch.testing.assert_close(conv.step(x)[0], g.step(x)[0], rtol=0, atol=0)
    # newest tap last: weight[..., -1] is F(0)·Δt, weight[..., 0] is F((taps-1)/fs)·Δt
    t = torch.tensor([0.0, (g.taps - 1) / 200.0])
    F = g.kernel(t).detach() / 200.0
    torch.testing.assert_close(conv.weight[..., -1].detach(), F[..., 0])
    torch.testing.assert_close(conv.weight[..., 0].detach(), F[..., 1])


def test_gamma_kernel_formula() -> None:
    # F(t) = α β² t_f exp(-β t_f), t_f = softplus(θ (t - t0)) / θ
    t = torch.linspace(0, 0.3, 31)
    alpha, beta, t0, theta = torch.tensor([[0.7]]), torch.tensor([[80.0]]), torch.tensor([[0.012]]), 1000.0
    tf = np.logaddexp(0.0, theta * (t.numpy().astype(np.float64) - 0.012)) / theta
    ref = 0.7 * 80.0**2 * tf * np.exp(-80.0 * tf)
    np.testing.assert_allclose(gamma_kernel(t, alpha, beta, t0, theta)[0, 0].numpy(), ref, rtol=1e-5,
                               atol=1e-6)
    # the corner: essentially zero before t0, peak ≈ 1/β after t0
    assert ref[0] < 1e-3 * ref.max()
    assert abs(t[int(np.argmax(ref))].item() - (0.012 + 1 / 80.0)) <= 0.01


@pytest.mark.parametrize("raw", [-1e4, -50.0, 0.0, 50.0, 1e4, -math.inf, math.inf])
def test_gamma_beta_t0_stay_positive_and_kernel_finite(raw: float) -> None:
    g = GammaConv1d(2, 2, 0.3, 1000.0)
    with torch.no_grad():
        g.log_beta.fill_(raw)
        g.log_t0.fill_(-raw)
    assert (g.beta > 0).all() and (g.t0 > 0).all()
    assert BETA_RANGE_PER_S[0] * 0.999 <= g.beta.min() and g.beta.max() <= BETA_RANGE_PER_S[1] * 1.001
    assert T0_RANGE_S[0] * 0.999 <= g.t0.min() and g.t0.max() <= T0_RANGE_S[1] * 1.001
    assert torch.isfinite(g.materialize()).all()


def test_gamma_parameters_get_gradients() -> None:
    torch.manual_seed(6)
    g = GammaConv1d(2, 1, 0.3, 100.0)
    x = torch.rand(1, 2, 100)
    g(x).pow(2).sum().backward()
    for p in (g.alpha, g.log_beta, g.log_t0, g.bias):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_gamma_rejects_a_kernel_shorter_than_a_frame() -> None:
    with pytest.raises(ModelError, match="taps"):
        GammaConv1d(1, 1, 0.001, 100.0)
