"""Recurrent decoders (seed 003: GRU and LSTM) with a pure streaming ``step`` and explicit state.

Architecture (:class:`GRUDecoder`, :class:`LSTMDecoder`)::

    x (B, n_in, T) → causal input projection over ``in_taps`` frames (n_in → proj)
                   → dropout → GRU / LSTM (``layers`` × ``hidden``) → 1-tap readout (hidden → n_out)

The input projection is a :class:`~rtdecode.nn.layers.CausalConv1d`: with ``in_taps = 1`` a
per-frame linear map (fewer input weights than feeding 98 units to the cell directly), with
``in_taps > 1`` it also sees the frames' lagged history (a Wiener filter's input, learned).

Streaming states, in this order (names ``state_0 …`` in the ONNX graph, identical in torch):

- the projection's last ``in_taps − 1`` input frames, float (B, n_in, in_taps − 1), when ``in_taps > 1``;
- ``h``, float (layers, B, hidden);
- ``c``, float (layers, B, hidden), LSTM only.

Zero states are the offline model's initial state (torch's default ``h0 = c0 = 0`` and the
projection's front zero-padding), so ``step`` over any chunking equals ``forward``.

Receptive field. A recurrent network's receptive field is unbounded: every output depends on
the whole past through ``h``. What the daemon needs from ``receptive_field`` is how long the
start-up transient lasts (it flags outputs ``WARMUP`` until then). A recurrent decoder declares
its **memory horizon** ``memory_frames`` instead: the number of frames after which two runs
started from different states give outputs within ``tol`` (1 %) of the output's standard
deviation, measured on data by :func:`measure_memory` (training does this on the training
frames, the IIR analogue of the Kalman decoder's ``ρⁿ ≤ 1 %``). It is a measured property of
the trained weights and data, not a bound; docs/models.md says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rtdecode.errors import ModelError
from rtdecode.nn.layers import CausalConv1d, StreamingModule, check_input

logger = logging.getLogger(__name__)

__all__ = ["CELLS", "GRUDecoder", "LSTMDecoder", "RecurrentDecoder", "measure_memory"]

#: Recurrent cells by name: the torch module and the number of state tensors it keeps.
CELLS: dict[str, tuple[type[nn.GRU] | type[nn.LSTM], int]] = {"gru": (nn.GRU, 1), "lstm": (nn.LSTM, 2)}


def _positive(name: str, v: Any) -> int:
    if isinstance(v, bool) or int(v) != v or v < 1:
        raise ModelError(f"{name} must be an integer ≥ 1, got {v!r}", f"pass a positive integer {name}")
    return int(v)


class RecurrentDecoder(StreamingModule):
    """Causal input projection → GRU / LSTM → linear readout (see the module notes).

    Parameters
    ----------
    n_in, n_out : int
        Input channels and outputs K.
    cell : {"gru", "lstm"}
    hidden : int
        Units per recurrent layer.
    layers : int
        Recurrent layers (1 or 2 are what seed 003's decoders use; any ≥ 1 works).
    proj : int, optional
        Width of the input projection (default ``hidden``).
    in_taps : int
        Frames the projection sees (1 = the current frame only).
    dropout : float
        Dropout on the projected inputs and between recurrent layers (training only).
    memory_frames : int
        Declared memory horizon = ``receptive_field`` (frames); set by :func:`measure_memory`
        after training.
    """

    cell_name = "gru"

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, layers: int = 1, proj: int | None = None,
                 in_taps: int = 1, dropout: float = 0.0, memory_frames: int = 100) -> None:
        super().__init__()
        n_in, n_out = _positive("n_in", n_in), _positive("n_out", n_out)
        hidden, layers = _positive("hidden", hidden), _positive("layers", layers)
        proj = hidden if proj is None else _positive("proj", proj)
        in_taps, memory_frames = _positive("in_taps", in_taps), _positive("memory_frames", memory_frames)
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {dropout!r}", "use e.g. 0.2")
        rnn_type, self._per_layer = CELLS[self.cell_name]
        self.config: dict[str, Any] = {
            "n_in": n_in, "n_out": n_out, "hidden": hidden, "layers": layers, "proj": proj,
            "in_taps": in_taps, "dropout": float(dropout), "memory_frames": memory_frames,
        }
        self.in_channels, self.out_channels = n_in, n_out
        self.hidden, self.n_layers = hidden, layers
        self.proj = CausalConv1d(n_in, proj, in_taps)
        self.drop = nn.Dropout(dropout)
        self.rnn = rnn_type(proj, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.readout = CausalConv1d(hidden, n_out, 1)

    @property
    def memory_frames(self) -> int:
        """The declared memory horizon, frames."""
        return int(self.config["memory_frames"])

    @memory_frames.setter
    def memory_frames(self, frames: int) -> None:
        self.config["memory_frames"] = _positive("memory_frames", frames)

    @property
    def receptive_field(self) -> int:
        return self.memory_frames

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        own = [(self.n_layers, batch, self.hidden)] * self._per_layer
        return [tuple(s) for s in self.proj.state_shapes(batch)] + own

    def _recur(self, z: Tensor, hidden: Sequence[Tensor] | None) -> tuple[Tensor, list[Tensor]]:
        """(B, proj, T) → (B, hidden, T) and the recurrent states after the last frame."""
        seq = self.drop(z).transpose(1, 2)
        if hidden is None:
            out, hn = self.rnn(seq)
        else:
            out, hn = self.rnn(seq, hidden[0] if self._per_layer == 1 else (hidden[0], hidden[1]))
        return out.transpose(1, 2), [hn] if isinstance(hn, Tensor) else list(hn)

    def forward(self, x: Tensor) -> Tensor:
        """Offline pass from zero state.

        Parameters
        ----------
        x : float (B, n_in, T)

        Returns
        -------
        float (B, n_out, T)
        """
        check_input(x, self.in_channels, type(self).__name__)
        out, _ = self._recur(self.proj(x), None)
        return self.readout(out)

    def step(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Pure streaming step.

        Parameters
        ----------
        x : float (B, n_in, T)
            New frames (T may be 0: empty output, states unchanged).
        states : list of Tensor
            Shapes as :meth:`state_shapes` (from :meth:`zero_states` or the previous step).

        Returns
        -------
        y : float (B, n_out, T)
        states : list of Tensor
            The next states.
        """
        check_input(x, self.in_channels, type(self).__name__)
        n = len(self.state_shapes())
        if len(states) != n:
            raise ModelError(f"{type(self).__name__}.step got {len(states)} state tensors, expected {n}",
                             "pass zero_states() or the previous step's states")
        if not torch.jit.is_tracing() and x.shape[2] == 0:
            return x.new_zeros((x.shape[0], self.out_channels, 0)), list(states)
        k = n - self._per_layer
        z, conv_state = self.proj.step(x, states[0] if k else None)
        out, hn = self._recur(z, states[k:])
        y, _ = self.readout.step(out)
        return y, ([conv_state] if conv_state is not None else []) + hn

    def extra_repr(self) -> str:
        return f"cell={self.cell_name}, memory_frames={self.memory_frames}"


class GRUDecoder(RecurrentDecoder):
    """:class:`RecurrentDecoder` with GRU cells (states: [projection frames], h)."""

    cell_name = "gru"


class LSTMDecoder(RecurrentDecoder):
    """:class:`RecurrentDecoder` with LSTM cells (states: [projection frames], h, c)."""

    cell_name = "lstm"


def measure_memory(model: RecurrentDecoder, x: np.ndarray, *, tol: float = 0.01, starts: int = 4,
                   seed: int = 0) -> int:
    """Frames until the output forgets its starting state (the declared ``receptive_field``).

    The model runs over ``x`` from zero state and from ``starts`` other states (each the
    state reached after a different stretch of ``x``); the horizon is the first frame after
    which every run stays within ``tol · std(y)`` of the zero-state run, for every output.

    Parameters
    ----------
    model : RecurrentDecoder
    x : float (T, n_in)
        Model frames (e.g. the training frames).
    tol : float
        Agreement, fraction of each output's standard deviation.
    starts : int
        Other starting states tried.
    seed : int
        Where those stretches start.

    Returns
    -------
    int
        Frames (≥ 1); ``T`` when the runs never agree within ``x`` (logged as a WARNING).
    """
    model.eval()
    t = x.shape[0]
    if t < 4:
        raise ModelError(f"measure_memory needs frames, got {t}", "pass the training frames")
    xt = torch.from_numpy(np.ascontiguousarray(x.T[None], dtype=np.float32))
    rng = np.random.default_rng(seed)
    worst = 0
    with torch.no_grad():
        y0 = model(xt)
        scale = y0.std(dim=2, keepdim=True).clamp_min(1e-12)
        for _ in range(starts):
            a = int(rng.integers(0, t // 2))
            _, st = model.step(xt[:, :, a:a + t // 2], model.zero_states(1))
            y1, _ = model.step(xt, st)
            off = ((y1 - y0).abs() > tol * scale).any(dim=1)[0]
            idx = torch.nonzero(off)
            worst = max(worst, int(idx[-1]) + 1 if idx.numel() else 0)
    if worst >= t:
        logger.warning("measure_memory: the outputs did not forget their starting state within %d frames", t)
    return max(1, min(t, worst + 1))
