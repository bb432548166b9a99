"""Recurrent decoders (GRU, LSTM): streaming == offline, state layout, specs, memory horizon."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtdecode.errors import ModelError  # noqa: E402
from rtdecode.nn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rtdecode.nn.layers import stream_chunks  # noqa: E402
from rtdecode.nn.models import (  # noqa: E402
    LinearDecoder,
    StackedDecoder,
    describe,
    model_from_spec,
    model_to_spec,
)
from rtdecode.nn.recurrent import GRUDecoder, LSTMDecoder, measure_memory  # noqa: E402
from tests.unit.test_nn_layers import assert_stream_equals_offline, random_sizes  # noqa: E402

CASES = {
    "gru-1": lambda: GRUDecoder(5, 3, hidden=8, proj=6),
    "gru-2-taps": lambda: GRUDecoder(5, 3, hidden=8, layers=2, in_taps=4, dropout=0.3),
    "lstm-1-taps": lambda: LSTMDecoder(5, 3, hidden=7, in_taps=3),
    "lstm-2": lambda: LSTMDecoder(5, 3, hidden=6, layers=2, proj=4, dropout=0.2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_recurrent_streams_like_offline_with_empty_chunks(name: str) -> None:
    torch.manual_seed(0)
    model = CASES[name]().eval()
    x = torch.randn(2, 5, 500)
    states = assert_stream_equals_offline(model, x, seed=len(name))
    assert [tuple(s.shape) for s in states] == model.state_shapes(2)
    # the final recurrent states are those of one offline pass (torch's own RNN over all frames)
    with torch.no_grad():
        z = model.proj(x).transpose(1, 2)
        _, hn = model.rnn(z)
    expected = [hn] if isinstance(hn, torch.Tensor) else list(hn)
    k = len(states) - len(expected)
    for got, want in zip(states[k:], expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    if model.proj.state_frames:  # the projection keeps the last in_taps - 1 input frames
        torch.testing.assert_close(states[0], x[:, :, -model.proj.state_frames:])


@pytest.mark.parametrize(("make", "n_states"), [(lambda: GRUDecoder(4, 2, hidden=5), 1),
                                                (lambda: GRUDecoder(4, 2, hidden=5, in_taps=2), 2),
                                                (lambda: LSTMDecoder(4, 2, hidden=5, layers=2), 2),
                                                (lambda: LSTMDecoder(4, 2, hidden=5, in_taps=3), 3)])
def test_state_layout_and_zero_state_is_the_offline_start(make, n_states: int) -> None:
    torch.manual_seed(1)
    model = make().eval()
    shapes = model.state_shapes(3)
    assert len(shapes) == n_states
    assert shapes[-1] == (model.n_layers, 3, 5)
    x = torch.randn(3, 4, 60)
    with torch.no_grad():
        y_step, _ = model.step(x, model.zero_states(3))
        torch.testing.assert_close(y_step, model(x))
        # an empty chunk leaves the states as they are and outputs nothing
        st = [torch.randn(s) for s in shapes]
        y0, st0 = model.step(x[:, :, :0], st)
    assert y0.shape == (3, 2, 0) and all(a is b for a, b in zip(st0, st, strict=True))
    # a non-zero state changes the output: the state is really used
    with torch.no_grad():
        y_other, _ = model.step(x, st)
    assert not torch.allclose(y_other[:, :, :3], y_step[:, :, :3])


def test_recurrent_rejects_bad_configs_and_inputs() -> None:
    for kw, match in (({"hidden": 0}, "hidden"), ({"layers": 1.5}, "layers"), ({"in_taps": -1}, "in_taps"),
                      ({"dropout": 1.0}, "dropout"), ({"memory_frames": 0}, "memory_frames")):
        with pytest.raises(ModelError, match=match):
            GRUDecoder(3, 2, **kw)
    model = LSTMDecoder(3, 2, hidden=4)
    with pytest.raises(ModelError, match="expected 2"):
        model.step(torch.zeros(1, 3, 5), model.zero_states(1)[:1])
    with pytest.raises(ModelError, match=r"\(batch, 3, T\)"):
        model(torch.zeros(1, 4, 5))


@pytest.mark.parametrize("name", list(CASES))
def test_recurrent_spec_and_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = CASES[name]().eval()
    model.memory_frames = 37
    spec = model_to_spec(model)
    assert spec["config"]["memory_frames"] == 37
    rebuilt = model_from_spec(json.loads(json.dumps(spec)))
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    assert rebuilt.receptive_field == 37
    path = save_checkpoint(tmp_path / "m.npz", model)
    loaded, spec2, _ = load_checkpoint(path)
    assert spec2 == spec
    x = torch.randn(1, 5, 50)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_measure_memory_is_where_starting_states_stop_mattering() -> None:
    torch.manual_seed(4)
    model = GRUDecoder(3, 2, hidden=16).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 3)).astype(np.float32)
    with torch.no_grad():  # a slow-forgetting network: push the update gates towards "keep"
        model.rnn.bias_hh_l0[16:32] += 4.0
    slow = measure_memory(model, x)
    with torch.no_grad():
        model.rnn.bias_hh_l0[16:32] -= 8.0  # now it forgets almost at once
    fast = measure_memory(model, x)
    assert 1 <= fast < slow <= 600
    # the property itself: from a foreign state, outputs after the horizon agree within 1 % of std
    xt = torch.from_numpy(x.T[None].copy())
    with torch.no_grad():
        y0 = model(xt)
        _, st = model.step(xt[:, :, 100:400], model.zero_states(1))
        y1, _ = model.step(xt, st)
    diff = (y1 - y0).abs()[0, :, fast - 1:]
    assert (diff <= 0.01 * y0.std(dim=2)[0][:, None] + 1e-6).all()
    assert (y1 - y0).abs()[0, :, 0].max() > 0.01 * float(y0.std())


def test_stacked_decoder_holds_recurrent_members() -> None:
    torch.manual_seed(5)
    members = [GRUDecoder(4, 2, hidden=5), LSTMDecoder(4, 2, hidden=5, in_taps=2), LinearDecoder(4, 2, 3)]
    members[0].memory_frames = 20
    stacked = StackedDecoder.from_members(members, torch.randn(2, 6), torch.randn(2))
    assert stacked.receptive_field == 100  # the LSTM's default declared memory
    assert len(stacked.state_shapes()) == 1 + 3 + 1
    x = torch.randn(1, 4, 300)
    assert_stream_equals_offline(stacked, x, seed=9)
    with torch.no_grad():
        y, _ = stream_chunks(stacked, x, random_sizes(300, 2))
        torch.testing.assert_close(y, stacked(x), atol=1e-5, rtol=1e-5)
    d = describe(GRUDecoder(4, 2, hidden=5, in_taps=3))
    assert d["kind"] == "GRUDecoder" and d["state_shapes"] == [[1, 4, 2], [1, 1, 5]]
