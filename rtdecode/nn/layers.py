"""Causal convolution layers with an offline ``forward`` and a pure streaming ``step``.

The streaming-state contract (docs/architecture.md): a causal conv layer with ``taps`` taps and
dilation ``d`` keeps the last ``(taps - 1) * d`` input frames as its state; a zero state
equals the offline front zero-padding, so running ``step`` over consecutive chunks gives
the same output as one ``forward`` over the whole signal.

Two protocols:

- :class:`StreamingLayer` (one layer, at most one state):
  ``step(x, state) -> (y, new_state)``, ``state_shape(batch)``.
- :class:`StreamingModule` (a model or stack; any number of states, in a fixed order):
  ``step(x, states: list) -> (y, states)``, ``state_shapes(batch)``.

Both expose ``forward(x)``, ``receptive_field`` (frames, ≥ 1) and ``delay`` (frames).
:class:`StreamingSequential` stacks layers with point-wise non-linearities in between.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from torch import Tensor, nn

from rtdecode.errors import ModelError

logger = logging.getLogger(__name__)

__all__ = [
    "POINTWISE_TYPES",
    "CausalConv1d",
    "StreamingLayer",
    "StreamingModule",
    "StreamingSequential",
    "causal_conv",
    "stream_chunks",
]

#: Modules that act on each frame independently (no state, receptive field 1).
POINTWISE_TYPES: tuple[type[nn.Module], ...] = (
    nn.LeakyReLU, nn.ReLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout,
)


def _tracing() -> bool:
    return bool(torch.jit.is_tracing())


def check_input(x: Tensor, channels: int, where: str) -> None:
    """Raise ModelError unless ``x`` is float (B, ``channels``, T) (skipped while tracing)."""
    if _tracing():
        return
    if x.dim() != 3 or x.shape[1] != channels:
        raise ModelError(f"{where} expects input of shape (batch, {channels}, T), got {tuple(x.shape)}",
                         "pass frames as (batch, channels, time); transpose (T, C) arrays first")


def causal_conv(x: Tensor, weight: Tensor, bias: Tensor | None, dilation: int,
                state: Tensor | None, state_frames: int) -> tuple[Tensor, Tensor | None]:
    """One causal convolution step over ``[state, x]``.

    Parameters
    ----------
    x : float (B, C, T)
        New input frames.
    weight : float (K, C, taps)
        Conv weight, oldest lag first: ``weight[..., -1]`` multiplies the newest frame.
    bias : float (K,) or None
    dilation : int
        Spacing between taps, frames.
    state : float (B, C, (taps - 1) * dilation) or None
        The previous frames (oldest first); None means zeros (the offline front padding).
    state_frames : int
        ``(taps - 1) * dilation`` as a Python int (kept out of the traced graph).

    Returns
    -------
    y : float (B, K, T)
    new_state : float (B, C, (taps - 1) * dilation) or None
        The last ``(taps - 1) * dilation`` frames of ``[state, x]``; None when the layer
        keeps no state (``taps == 1``).
    """
    pad = int(state_frames)
    if state is None and pad:
        state = x.new_zeros((x.shape[0], x.shape[1], pad))
    if not _tracing() and x.shape[2] == 0:  # nothing new: empty output, state unchanged
        return x.new_zeros((x.shape[0], weight.shape[0], 0)), state
    if pad == 0 or state is None:
        return F.conv1d(x, weight, bias), None
    xs = torch.cat([state, x], dim=2)
    y = F.conv1d(xs, weight, bias, dilation=dilation)
    return y, xs[:, :, -pad:]


class StreamingLayer(nn.Module):
    """Base of a layer with at most one state tensor (see module docstring)."""

    in_channels: int
    out_channels: int

    @property
    def state_frames(self) -> int:
        """Frames of past input kept as state, ``(taps - 1) * dilation``."""
        raise NotImplementedError

    @property
    def receptive_field(self) -> int:
        """Input frames that one output frame depends on, ``state_frames + 1``."""
        return self.state_frames + 1

    @property
    def delay(self) -> int:
        """Output delay, frames (0: causal, no look-ahead)."""
        return 0

    def state_shape(self, batch: int = 1) -> tuple[int, int, int]:
        """Shape of the state, (batch, in_channels, state_frames)."""
        return (batch, self.in_channels, self.state_frames)

    def state_shapes(self, batch: int = 1) -> list[tuple[int, int, int]]:
        """``[state_shape(batch)]``, or ``[]`` for a layer without state."""
        return [self.state_shape(batch)] if self.state_frames else []

    def step(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pure streaming step, see :func:`causal_conv`."""
        raise NotImplementedError


class CausalConv1d(StreamingLayer):
    """Causal 1-D convolution, front zero-padded (no look-ahead).

    ``y[:, k, t] = b[k] + Σ_c Σ_j W[k, c, j] · x[:, c, t - (taps - 1 - j) · dilation]``
    with ``x`` zero before t = 0.

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out.
    taps : int
        Kernel length, frames (≥ 1).
    dilation : int
        Spacing between taps, frames (≥ 1).
    bias : bool
        Learn an additive bias per output channel.

    Attributes
    ----------
    weight : Parameter float32 (out_ch, in_ch, taps)
        Oldest lag first (Xavier-uniform initialised).
    bias : Parameter float32 (out_ch,) or None
        Zero-initialised.
    """

    def __init__(self, in_ch: int, out_ch: int, taps: int, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("taps", taps), ("dilation", dilation)):
            if int(v) != v or v < 1:
                raise ModelError(f"CausalConv1d: {name} must be an integer ≥ 1, got {v!r}",
                                 f"pass a positive integer {name}")
        self.in_channels, self.out_channels = int(in_ch), int(out_ch)
        self.taps, self.dilation = int(taps), int(dilation)
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, self.taps))
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        nn.init.xavier_uniform_(self.weight)

    @property
    def state_frames(self) -> int:
        return (self.taps - 1) * self.dilation

    def forward(self, x: Tensor) -> Tensor:
        """Offline pass with front zero-padding.

        Parameters
        ----------
        x : float (B, in_ch, T)

        Returns
        -------
        float (B, out_ch, T)
        """
        check_input(x, self.in_channels, "CausalConv1d")
        return F.conv1d(F.pad(x, (self.state_frames, 0)), self.weight, self.bias, dilation=self.dilation)

    def step(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Streaming step: ``(y (B, out_ch, T), new_state (B, in_ch, state_frames))``.

        ``state=None`` means zeros; the new state is None when ``state_frames == 0``.
        """
        check_input(x, self.in_channels, "CausalConv1d")
        return causal_conv(x, self.weight, self.bias, self.dilation, state, self.state_frames)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, taps={self.taps}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")


class StreamingModule(nn.Module):
    """Base of a streaming model: ``forward``, ``step(x, states)``, ``state_shapes``.

    Subclasses implement :meth:`forward`, :meth:`step`, :meth:`state_shapes` and
    :attr:`receptive_field`; ``delay`` defaults to 0 and ``in_channels`` /
    ``out_channels`` name the sizes of ``x`` and ``y``.
    """

    in_channels: int
    out_channels: int

    @property
    def receptive_field(self) -> int:
        """Input frames that one output frame depends on (≥ 1)."""
        raise NotImplementedError

    @property
    def delay(self) -> int:
        """Output delay, frames."""
        return 0

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        """Shapes of the states, in the order ``step`` takes and returns them."""
        raise NotImplementedError

    def step(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Pure streaming step over new frames ``x`` (B, in_channels, T)."""
        raise NotImplementedError

    def zero_states(self, batch: int = 1, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> list[Tensor]:
        """Initial states (zeros), equal to the offline front padding."""
        return [torch.zeros(s, dtype=dtype, device=device) for s in self.state_shapes(batch)]


def _check_states(states: Sequence[Tensor], expected: int, where: str) -> None:
    if len(states) != expected:
        raise ModelError(f"{where}.step got {len(states)} state tensors, expected {expected}",
                         "pass the list returned by zero_states() or by the previous step()")


class StreamingSequential(StreamingModule):
    """Layers run in order; point-wise modules (activations, dropout) between them.

    Parameters
    ----------
    *layers : StreamingLayer, StreamingModule or a point-wise module
        Point-wise modules must be one of :data:`POINTWISE_TYPES`.

    Notes
    -----
    The states of the stack are its stateful layers' states, in layer order.
    ``receptive_field = 1 + Σ (receptive_field_i - 1)`` and ``delay = Σ delay_i``.
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, (StreamingLayer, StreamingModule, *POINTWISE_TYPES)):
                raise ModelError(
                    f"StreamingSequential layer {i} is a {type(layer).__name__}, which has no "
                    "streaming step",
                    "use CausalConv1d / GammaConv1d / a StreamingModule, or a point-wise module "
                    f"({', '.join(t.__name__ for t in POINTWISE_TYPES)})")
        self.layers = nn.ModuleList(layers)
        streaming = [m for m in layers if isinstance(m, (StreamingLayer, StreamingModule))]
        if not streaming:
            raise ModelError("StreamingSequential needs at least one convolution layer",
                             "add a CausalConv1d")
        self.in_channels = streaming[0].in_channels
        self.out_channels = streaming[-1].out_channels
        for a, b in zip(streaming[:-1], streaming[1:], strict=True):
            if a.out_channels != b.in_channels:
                raise ModelError(f"StreamingSequential: a layer outputs {a.out_channels} channels but "
                                 f"the next expects {b.in_channels}", "make consecutive sizes match")

    def _n_states(self, layer: nn.Module) -> int:
        if isinstance(layer, StreamingLayer):
            return 1 if layer.state_frames else 0
        if isinstance(layer, StreamingModule):
            return len(layer.state_shapes())
        return 0

    @property
    def receptive_field(self) -> int:
        return 1 + sum(m.receptive_field - 1 for m in self.layers
                       if isinstance(m, (StreamingLayer, StreamingModule)))

    @property
    def delay(self) -> int:
        return sum(m.delay for m in self.layers if isinstance(m, (StreamingLayer, StreamingModule)))

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for m in self.layers:
            if isinstance(m, (StreamingLayer, StreamingModule)):
                out += m.state_shapes(batch)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Offline pass: float (B, in_channels, T) → (B, out_channels, T)."""
        check_input(x, self.in_channels, "StreamingSequential")
        for m in self.layers:
            x = m(x)
        return x

    def step(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Streaming step.

        Parameters
        ----------
        x : float (B, in_channels, T)
        states : list of Tensor
            Shapes as :meth:`state_shapes` (e.g. from :meth:`zero_states`).

        Returns
        -------
        y : float (B, out_channels, T)
        states : list of Tensor
            The next states, same shapes.
        """
        n_total = sum(self._n_states(m) for m in self.layers)
        _check_states(states, n_total, "StreamingSequential")
        new: list[Tensor] = []
        i = 0
        for m in self.layers:
            n = self._n_states(m)
            if isinstance(m, StreamingLayer):
                x, s = m.step(x, states[i] if n else None)
                if s is not None:
                    new.append(s)
            elif isinstance(m, StreamingModule):
                x, ss = m.step(x, list(states[i:i + n]))
                new += ss
            else:
                x = m(x)
            i += n
        return x, new


def stream_chunks(module: StreamingModule | StreamingLayer, x: Tensor, sizes: Iterable[int],
                  states: Sequence[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
    """Run ``module.step`` over consecutive chunks of ``x`` (a test and verify helper).

    Parameters
    ----------
    module : StreamingModule or StreamingLayer
    x : float (B, C, T)
    sizes : iterable of int
        Chunk lengths (frames, ≥ 0); the last chunk takes whatever is left.
    states : list of Tensor, optional
        Initial states (zeros by default).

    Returns
    -------
    y : float (B, K, T)
        Concatenated outputs.
    states : list of Tensor
        The final states.
    """
    if isinstance(module, StreamingLayer):
        module = StreamingSequential(module)
    st = list(states) if states is not None else module.zero_states(
        x.shape[0], dtype=x.dtype, device=x.device)
    outs = []
    start, total = 0, x.shape[2]
    for n in sizes:
        if start >= total:
            break
        y, st = module.step(x[:, :, start:start + n], st)
        outs.append(y)
        start += n
    if start < total:
        y, st = module.step(x[:, :, start:], st)
        outs.append(y)
    return torch.cat(outs, dim=2), st

