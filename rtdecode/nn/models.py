"""The seed papers' decoders as streaming torch modules, and their JSON architecture specs.

- :class:`GammaCNN` (seed 000): session-dependent 1×1 feature layers, then shared causal
  Gamma-function (or free-kernel) layers; regression, one output per frame.
- :class:`LinearDecoder`: one causal convolution (a multi-lag Wiener filter); the paper's
  linear control.
- :class:`SConvNet` (A / B / C) and :class:`AllConvNet` (seed 004): classifiers of
  instantaneous HD-sEMG images; every frame is classified on its own (receptive field 1).

Every model is a :class:`~rtdecode.nn.layers.StreamingModule` (``forward``, ``step``,
``state_shapes``, ``receptive_field``, ``delay``) and records its constructor arguments in
``config``, so :func:`model_to_spec` / :func:`model_from_spec` rebuild it without pickle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rtdecode.errors import ModelError
from rtdecode.nn.gamma import GammaConv1d
from rtdecode.nn.layers import (
    CausalConv1d,
    StreamingLayer,
    StreamingModule,
    StreamingSequential,
    check_input,
)
from rtdecode.nn.recurrent import GRUDecoder, LSTMDecoder, RecurrentDecoder

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_TYPES",
    "SPEC_VERSION",
    "AllConvNet",
    "FrameMLP",
    "GRUDecoder",
    "GammaCNN",
    "LSTMDecoder",
    "LinearDecoder",
    "SConvNet",
    "StackedDecoder",
    "count_parameters",
    "describe",
    "model_from_spec",
    "model_to_spec",
    "streaming_core",
]

SPEC_VERSION = 1


def _positive_ints(name: str, values: Sequence[int], *, allow_empty: bool = False) -> list[int]:
    out = [int(v) for v in values]
    if (not out and not allow_empty) or any(v < 1 or v != orig for v, orig in zip(out, values, strict=True)):
        raise ModelError(f"{name} must be a {'' if allow_empty else 'non-empty '}list of integers ≥ 1, "
                         f"got {list(values)!r}", f"fix {name}")
    return out


# -- seed 000 ------------------------------------------------------------------------


class GammaCNN(StreamingModule):
    """Gamma-function CNN of seed 000 (or its free-kernel "naive" variant).

    Architecture (paper sizes by default, 27 inputs in the paper)::

        per session: 1×1 conv n_in→21, leaky ReLU, 1×1 conv 21→15, leaky ReLU, 1×1 conv 15→9, leaky ReLU
        shared:      causal 9→6, leaky ReLU, causal 6→3, leaky ReLU, causal 3→1 (linear output)

    The shared layers are :class:`GammaConv1d` (``variant="gamma"``, 300 ms kernels) or
    :class:`CausalConv1d` with ``free_taps`` free taps (``variant="free"``).

    Parameters
    ----------
    n_in : int
        Input channels (neural envelopes).
    rate_hz : float
        Frame rate, Hz (100 Hz in the paper; 1 kHz in its high-rate experiment).
    n_sessions : int
        Number of session-dependent feature stacks.
    feature_sizes : sequence of int
        Output sizes of the 1×1 feature layers (may be empty: no feature layers).
    shared_sizes : sequence of int
        Output sizes of the shared causal layers; the last is the number of outputs K.
    kernel_s : float
        Gamma kernel length, s (taps = round(kernel_s · rate_hz)).
    variant : {"gamma", "free"}
        Kernel type of the shared layers.
    free_taps : int, optional
        Taps of a free kernel; default the same span, ``round(kernel_s · rate_hz)``
        (the paper's naive network used 10 taps = 100 ms at 100 Hz).
    leak : float
        Negative slope of the leaky ReLUs.
    theta : float
        Gamma corner sharpness, per 10 ms (see :mod:`rtdecode.nn.gamma`).

    Notes
    -----
    Only the shared layers keep state (the feature layers are 1×1), so every session has
    the same states; ``step`` and ``forward`` take a ``session`` index.
    """

    def __init__(self, n_in: int, rate_hz: float, n_sessions: int = 1,
                 feature_sizes: Sequence[int] = (21, 15, 9), shared_sizes: Sequence[int] = (6, 3, 1),
                 kernel_s: float = 0.3, variant: str = "gamma", free_taps: int | None = None,
                 leak: float = 0.01, theta: float = 10.0) -> None:
        super().__init__()
        if variant not in ("gamma", "free"):
            raise ModelError(f"GammaCNN variant must be 'gamma' or 'free', got {variant!r}",
                             "use variant='gamma' (Gamma-function kernels) or 'free' (free taps)")
        (n_in,) = _positive_ints("n_in", [n_in])
        (n_sessions,) = _positive_ints("n_sessions", [n_sessions])
        feats = _positive_ints("feature_sizes", feature_sizes, allow_empty=True)
        shared = _positive_ints("shared_sizes", shared_sizes)
        span = int(round(kernel_s * rate_hz))
        taps = span if free_taps is None else _positive_ints("free_taps", [free_taps])[0]
        self.config: dict[str, Any] = {
            "n_in": n_in, "rate_hz": float(rate_hz), "n_sessions": n_sessions, "feature_sizes": feats,
            "shared_sizes": shared, "kernel_s": float(kernel_s), "variant": variant,
            "free_taps": None if free_taps is None else taps, "leak": float(leak), "theta": float(theta),
        }
        self.in_channels, self.out_channels = n_in, shared[-1]
        self.n_sessions = n_sessions

        def feature_stack() -> nn.Module:
            layers: list[nn.Module] = []
            prev = n_in
            for size in feats:
                layers += [CausalConv1d(prev, size, 1), nn.LeakyReLU(leak)]
                prev = size
            return StreamingSequential(*layers) if layers else nn.Identity()

        self.features = nn.ModuleList(feature_stack() for _ in range(n_sessions))
        layers: list[nn.Module] = []
        prev = feats[-1] if feats else n_in
        for i, size in enumerate(shared):
            if variant == "gamma":
                layers.append(GammaConv1d(prev, size, kernel_s, rate_hz, theta=theta))
            else:
                layers.append(CausalConv1d(prev, size, taps))
            if i < len(shared) - 1:
                layers.append(nn.LeakyReLU(leak))
            prev = size
        self.shared = StreamingSequential(*layers)

    def _check_session(self, session: int) -> None:
        if not 0 <= session < self.n_sessions:
            raise ModelError(f"GammaCNN has {self.n_sessions} session stacks, got session={session}",
                             f"pass a session index in 0..{self.n_sessions - 1}")

    @property
    def receptive_field(self) -> int:
        return self.shared.receptive_field

    @property
    def delay(self) -> int:
        return self.shared.delay

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        return self.shared.state_shapes(batch)

    def forward(self, x: Tensor, session: int = 0) -> Tensor:
        """Offline pass.

        Parameters
        ----------
        x : float (B, n_in, T)
            Input frames at ``rate_hz``.
        session : int
            Which feature stack to use.

        Returns
        -------
        float (B, K, T)
        """
        self._check_session(session)
        check_input(x, self.in_channels, "GammaCNN")
        return self.shared(self.features[session](x))

    def step(self, x: Tensor, states: Sequence[Tensor], session: int = 0) -> tuple[Tensor, list[Tensor]]:
        """Streaming step for one session: (B, n_in, T) → ((B, K, T), next states)."""
        self._check_session(session)
        check_input(x, self.in_channels, "GammaCNN")
        feat = self.features[session]
        if isinstance(feat, StreamingSequential):  # 1×1 layers: no state; step also takes 0 frames
            x, _ = feat.step(x, [])
        return self.shared.step(x, states)

    def as_streaming(self, session: int = 0) -> StreamingSequential:
        """One session's network as a plain stack (shares this model's parameters)."""
        self._check_session(session)
        feat = self.features[session]
        head = list(feat.layers) if isinstance(feat, StreamingSequential) else []
        return StreamingSequential(*head, *self.shared.layers)


class LinearDecoder(StreamingModule):
    """A causal linear filter over ``taps`` frames (Wiener filter; seed 000's linear control).

    Parameters
    ----------
    n_in, n_out : int
        Input and output channels.
    taps : int
        Lags, frames (``taps - 1`` past frames plus the current one).
    """

    def __init__(self, n_in: int, n_out: int, taps: int) -> None:
        super().__init__()
        self.conv = CausalConv1d(n_in, n_out, taps)
        self.config: dict[str, Any] = {"n_in": int(n_in), "n_out": int(n_out), "taps": int(taps)}
        self.in_channels, self.out_channels = int(n_in), int(n_out)

    @property
    def receptive_field(self) -> int:
        return self.conv.receptive_field

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        return list(self.conv.state_shapes(batch))

    def forward(self, x: Tensor) -> Tensor:
        """Offline pass: (B, n_in, T) → (B, n_out, T)."""
        return self.conv(x)

    def step(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Streaming step: (B, n_in, T) → ((B, n_out, T), next states)."""
        n = len(self.state_shapes())
        if len(states) != n:
            raise ModelError(f"LinearDecoder.step got {len(states)} states, expected {n}",
                             "pass zero_states() or the previous step's states")
        y, s = self.conv.step(x, states[0] if n else None)
        return y, [s] if s is not None else []


#: Regression models a :class:`StackedDecoder` can hold (besides frame classifiers, stacked alone).
STACKABLE = (GammaCNN, LinearDecoder, RecurrentDecoder)


class StackedDecoder(StreamingModule):
    """Streaming decoders run side by side and mixed per frame by a linear head.

    ``y_t = W · concat(member_1(x)_t, …, member_M(x)_t) + b``: an ensemble (``W`` averages
    the members) or a stacked combination (``W`` fitted by least squares on a validation
    set, e.g. restarts of a Gamma CNN stacked with the Wiener filter). Every member sees the
    same input frames and keeps its own state. Members of frame classifiers output logits,
    so an averaging head gives the ensemble's mean logits (the exported softmax of them is
    the normalised geometric mean of the members' probabilities).

    Parameters
    ----------
    members : sequence of dict
        Architecture specs (:func:`model_to_spec`) of the members, all with the same input
        size: streaming regression models (``GammaCNN``, ``LinearDecoder``, ``GRUDecoder``,
        ``LSTMDecoder``), or frame classifiers (``FrameMLP``, ``SConvNet``, ``AllConvNet``,
        e.g. recalibrations of one network with different seeds) — not both.
    n_out : int
        Outputs K of the head.

    Notes
    -----
    ``head`` is a 1-tap :class:`CausalConv1d` (``Σ K_i`` → ``n_out``) and keeps no state.
    States are the members' states in member order. ``receptive_field`` is the largest
    member's; ``delay`` the largest member delay. Build one from trained modules with
    :meth:`from_members`.
    """

    def __init__(self, members: Sequence[dict[str, Any]], n_out: int) -> None:
        super().__init__()
        if not members:
            raise ModelError("StackedDecoder needs at least one member", "give member specs")
        built: list[StreamingModule] = []
        for i, spec in enumerate(members):
            m = model_from_spec(dict(spec))
            if not isinstance(m, (*STACKABLE, _FrameModel)):
                raise ModelError(f"StackedDecoder member {i} is a {type(m).__name__}",
                                 "stack regression models (GammaCNN, LinearDecoder, GRUDecoder, "
                                 "LSTMDecoder) or frame classifiers (FrameMLP, SConvNet, AllConvNet)")
            built.append(m)
        if len({isinstance(m, _FrameModel) for m in built}) > 1:
            raise ModelError("StackedDecoder mixes frame classifiers and regression models",
                             "stack models of one task")
        sizes = {m.in_channels for m in built}
        if len(sizes) != 1:
            raise ModelError(f"StackedDecoder members take different input sizes {sorted(sizes)}",
                             "stack models trained on the same input frames")
        (n_out,) = _positive_ints("n_out", [n_out])
        self.members = nn.ModuleList(built)
        self._typed = built  # the same modules, typed (ModuleList items are plain Modules)
        self.in_channels = built[0].in_channels
        self.out_channels = n_out
        self.head = CausalConv1d(sum(m.out_channels for m in built), n_out, 1)
        self.config: dict[str, Any] = {"members": [model_to_spec(m) for m in built], "n_out": n_out}
        self._n_states = [len(m.state_shapes()) for m in built]

    @classmethod
    def average(cls, members: Sequence[nn.Module]) -> StackedDecoder:
        """The ensemble of trained ``members`` with K outputs each: their per-frame mean."""
        k = int(members[0].out_channels)  # type: ignore[arg-type]
        return cls.from_members(members, torch.cat([torch.eye(k)] * len(members), dim=1) / len(members),
                                torch.zeros(k))

    @classmethod
    def from_members(cls, members: Sequence[nn.Module], weight: Tensor, bias: Tensor) -> StackedDecoder:
        """Stack trained ``members`` (weights copied) with head ``weight`` (K, Σ K_i) and ``bias`` (K,)."""
        out = cls([model_to_spec(m) for m in members], int(weight.shape[0]))
        with torch.no_grad():
            for dst, src in zip(out.members, members, strict=True):
                dst.load_state_dict(src.state_dict())
            out.head.weight.copy_(weight.reshape(out.head.weight.shape))
            assert out.head.bias is not None
            out.head.bias.copy_(bias)
        return out.eval()

    @property
    def receptive_field(self) -> int:
        return max(m.receptive_field for m in self._typed)

    @property
    def delay(self) -> int:
        return max(m.delay for m in self._typed)

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        return [s for m in self._typed for s in m.state_shapes(batch)]

    def forward(self, x: Tensor) -> Tensor:
        """Offline pass: (B, n_in, T) → (B, n_out, T)."""
        check_input(x, self.in_channels, "StackedDecoder")
        return self._mix(torch.cat([m(x) for m in self._typed], dim=1))

    def _mix(self, z: Tensor) -> Tensor:
        # the 1-tap head as a matrix product: also defined for a chunk of 0 frames
        assert self.head.bias is not None
        return torch.matmul(self.head.weight[:, :, 0], z) + self.head.bias[:, None]

    def step(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Streaming step: (B, n_in, T) → ((B, n_out, T), next states)."""
        if len(states) != sum(self._n_states):
            raise ModelError(f"StackedDecoder.step got {len(states)} states, expected {sum(self._n_states)}",
                             "pass zero_states() or the previous step's states")
        ys, new, i = [], [], 0
        for m, n in zip(self._typed, self._n_states, strict=True):
            y, ss = m.step(x, list(states[i:i + n]))
            ys.append(y)
            new += ss
            i += n
        return self._mix(torch.cat(ys, dim=1)), new


# -- seed 004 ------------------------------------------------------------------------


def _conv_out(n: int, k: int, stride: int) -> int:
    return (n + 2 * (k // 2) - k) // stride + 1


class _FrameModel(StreamingModule):
    """A stateless model that maps each frame on its own (receptive field 1)."""

    @property
    def receptive_field(self) -> int:
        return 1

    def state_shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        return []

    def step(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Stateless: ``(forward(x), [])``."""
        if len(states):
            raise ModelError(f"{type(self).__name__} keeps no state, got {len(states)} state tensors",
                             "pass an empty list")
        return self.forward(x), []


class _FrameImageModel(_FrameModel):
    """Classifies each frame (a 1×H×W image of the grid, row-major channels) on its own."""

    def __init__(self, grid_shape: Sequence[int], n_classes: int) -> None:
        super().__init__()
        h, w = _positive_ints("grid_shape", grid_shape)[:2] if len(grid_shape) == 2 else (0, 0)
        if not h:
            raise ModelError(f"grid_shape must be (rows, cols), got {list(grid_shape)!r}",
                             "pass the electrode grid as (rows, cols)")
        (n_classes,) = _positive_ints("n_classes", [n_classes])
        self.grid_shape = (h, w)
        self.n_classes = n_classes
        self.in_channels, self.out_channels = h * w, n_classes

    def classify(self, images: Tensor) -> Tensor:
        """Logits (N, n_classes) of images (N, 1, H, W)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Per-frame logits.

        Parameters
        ----------
        x : float (B, H·W, T)
            Grid samples, channel ``r · W + c`` at row r, column c (as a ``grid`` stage
            lays them out), already scaled by the preprocessing chain.

        Returns
        -------
        float (B, n_classes, T)
            Logits (export appends a softmax).
        """
        check_input(x, self.in_channels, type(self).__name__)
        h, w = self.grid_shape
        images = x.permute(0, 2, 1).reshape(-1, 1, h, w)
        logits = self.classify(images)
        return logits.reshape(x.shape[0], -1, self.n_classes).permute(0, 2, 1)


def _block(cin: int, cout: int, k: int, stride: int, dropout: float) -> nn.Sequential:
    """Conv (same padding) → batch norm → ELU → dropout (BN before each non-linearity)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ELU(), nn.Dropout(dropout))


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SConvNet(_FrameImageModel):
    """Shallow ConvNet of seed 004 (Table I), variants A, B and C.

    ::

        input BN
        A: 3×3 conv w0 → [pool] → 3×3 conv w1 → FC fc → G-way
        B: 3×3 conv w0 → 1×1 conv w0 → [pool] → 3×3 conv w1 → 1×1 conv w1 → FC fc → G-way
        C: 3×3 conv w0 → 3×3 conv w0 stride 2 → 3×3 conv w1 → 3×3 conv w1 stride 2 → FC fc → G-way

    Each conv / FC layer is followed by batch norm, ELU and dropout; weights are Xavier-
    uniform. The G-way layer gives logits (the softmax is added at export).

    Parameters
    ----------
    variant : {"A", "B", "C"}
    grid_shape : (int, int)
        Electrode grid (rows, cols), e.g. (16, 8) for CapgMyo, (13, 5), (16, 4).
    n_classes : int
        G, number of classes.
    dropout : float
        Dropout probability (the paper: 0.35).
    widths : (int, int)
        Channels of the two conv stages (paper: 32, 64).
    fc : int
        Width of FC1 (paper: 256).
    pool : {None, "max", "avg"}
        Optional 2×2 pooling after the first stage (A and B only; the paper's ablation,
        Table IV: ELU without pooling did best).

    Notes
    -----
    Deviations: every 3×3 conv uses "same" padding (the paper does not give padding; with
    small grids such as 16×4 or 13×5 unpadded convs would shrink the image to nothing);
    convs followed by batch norm have no bias (the BN shift replaces it).
    """

    def __init__(self, variant: str = "A", grid_shape: Sequence[int] = (16, 8), n_classes: int = 8,
                 dropout: float = 0.35, widths: Sequence[int] = (32, 64), fc: int = 256,
                 pool: str | None = None) -> None:
        super().__init__(grid_shape, n_classes)
        if variant not in ("A", "B", "C"):
            raise ModelError(f"SConvNet variant must be 'A', 'B' or 'C', got {variant!r}",
                             "pick one of the paper's variants")
        if pool not in (None, "max", "avg") or (pool and variant == "C"):
            raise ModelError(f"SConvNet pool must be None, 'max' or 'avg' (not with variant C), got {pool!r}",
                             "variant C down-samples with stride-2 convs instead of pooling")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {dropout!r}", "use e.g. 0.35")
        w0, w1 = _positive_ints("widths", widths)[:2] if len(widths) == 2 else (0, 0)
        if not w0:
            raise ModelError(f"widths must be two channel counts, got {list(widths)!r}", "e.g. (32, 64)")
        (fc,) = _positive_ints("fc", [fc])
        self.config: dict[str, Any] = {
            "variant": variant, "grid_shape": list(self.grid_shape), "n_classes": self.n_classes,
            "dropout": float(dropout), "widths": [w0, w1], "fc": fc, "pool": pool,
        }
        h, w = self.grid_shape
        layers: list[nn.Module] = [_block(1, w0, 3, 1, dropout)]
        if variant == "B":
            layers.append(_block(w0, w0, 1, 1, dropout))
        if variant == "C":
            layers.append(_block(w0, w0, 3, 2, dropout))
            h, w = _conv_out(h, 3, 2), _conv_out(w, 3, 2)
        if pool:
            k = (min(2, h), min(2, w))
            layers.append(nn.MaxPool2d(k, k, ceil_mode=True) if pool == "max"
                          else nn.AvgPool2d(k, k, ceil_mode=True))
            h, w = math.ceil(h / k[0]), math.ceil(w / k[1])
        layers.append(_block(w0, w1, 3, 1, dropout))
        if variant == "B":
            layers.append(_block(w1, w1, 1, 1, dropout))
        if variant == "C":
            layers.append(_block(w1, w1, 3, 2, dropout))
            h, w = _conv_out(h, 3, 2), _conv_out(w, 3, 2)
        self.input_bn = nn.BatchNorm2d(1)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(w1 * h * w, fc, bias=False), nn.BatchNorm1d(fc), nn.ELU(),
            nn.Dropout(dropout), nn.Linear(fc, self.n_classes))
        _xavier(self)

    def classify(self, images: Tensor) -> Tensor:
        """Logits (N, G) of images (N, 1, H, W)."""
        return self.head(self.features(self.input_bn(images)))


class AllConvNet(_FrameImageModel):
    """All-convolutional network of seed 004 (Table II).

    ::

        input BN
        3×3 conv w0, 3×3 conv w0, 3×3 conv w0 stride 2,
        3×3 conv w1, 3×3 conv w1, 3×3 conv w1 stride 2,
        1×1 conv w1, 1×1 conv G → global average over space → G logits

    Every conv is followed by batch norm and ELU (dropout after all but the class layer).

    Parameters
    ----------
    grid_shape : (int, int)
        Electrode grid (rows, cols).
    n_classes : int
        G.
    dropout : float
        Dropout probability (the paper: 0.25).
    widths : (int, int)
        Channels of the two stages (paper: 64, 128).

    Notes
    -----
    Deviations: "same" padding everywhere (so 16×8, 16×4, 13×5 grids work); Table II's
    class layer reads "8×8 Conv. 8 ELU" followed by "global averaging over 8×8", which
    does not fit its own 16×16 input after two stride-2 convs; we follow the text
    ("fully connected layers … replaced by a simple 1-by-1 convolution", then averaged
    over the whole image): a 1×1 conv to G maps with BN + ELU, averaged over whatever
    spatial size remains. Convs followed by batch norm have no bias.
    """

    def __init__(self, grid_shape: Sequence[int] = (16, 8), n_classes: int = 8, dropout: float = 0.25,
                 widths: Sequence[int] = (64, 128)) -> None:
        super().__init__(grid_shape, n_classes)
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {dropout!r}", "use e.g. 0.25")
        w0, w1 = _positive_ints("widths", widths)[:2] if len(widths) == 2 else (0, 0)
        if not w0:
            raise ModelError(f"widths must be two channel counts, got {list(widths)!r}", "e.g. (64, 128)")
        self.config: dict[str, Any] = {"grid_shape": list(self.grid_shape), "n_classes": self.n_classes,
                                       "dropout": float(dropout), "widths": [w0, w1]}
        g = self.n_classes
        self.input_bn = nn.BatchNorm2d(1)
        self.features = nn.Sequential(
            _block(1, w0, 3, 1, dropout), _block(w0, w0, 3, 1, dropout), _block(w0, w0, 3, 2, dropout),
            _block(w0, w1, 3, 1, dropout), _block(w1, w1, 3, 1, dropout), _block(w1, w1, 3, 2, dropout),
            _block(w1, w1, 1, 1, dropout),
            nn.Sequential(nn.Conv2d(w1, g, 1, bias=False), nn.BatchNorm2d(g), nn.ELU()),
        )
        _xavier(self)

    def classify(self, images: Tensor) -> Tensor:
        """Logits (N, G) of images (N, 1, H, W): class maps averaged over space."""
        return self.features(self.input_bn(images)).mean(dim=(2, 3))


# -- frame classifier for any channel layout -------------------------------------------


class FrameMLP(_FrameModel):
    """A small multilayer perceptron that classifies each frame of ``n_in`` channels on its own.

    ::

        [log] → per-channel input BN → [Linear → BN → ELU → dropout] per hidden width → Linear (G logits)

    For rigs without an electrode grid (e.g. an 8-channel armband) and for feature frames
    (an RMS envelope from the chain). With ``log_input`` the frames are log-compressed first
    (``log(max(x, floor))``): a change of electrode gain between sessions then becomes a
    per-channel offset, which the input normalisation absorbs. The input BN and the first Linear are the
    session-specific part ``rtdecode calibrate`` refits. Receptive field 1, no state.

    Parameters
    ----------
    n_in : int
        Channels of a frame.
    n_classes : int
        G.
    hidden : sequence of int
        Hidden widths (default one layer of 128).
    dropout : float
    log_input : bool
        Log-compress the (non-negative, e.g. envelope) frames first.
    floor : float
        Smallest value taken before the log, units of the frames.
    """

    def __init__(self, n_in: int, n_classes: int, hidden: Sequence[int] = (128,), dropout: float = 0.2,
                 log_input: bool = False, floor: float = 1e-6) -> None:
        super().__init__()
        (n_in, n_classes) = _positive_ints("n_in / n_classes", [n_in, n_classes])
        widths = _positive_ints("hidden", hidden, allow_empty=True)
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {dropout!r}", "use e.g. 0.2")
        if not floor > 0:
            raise ModelError(f"floor must be > 0, got {floor!r}", "use e.g. 1e-6 (units of the frames)")
        self.config: dict[str, Any] = {"n_in": n_in, "n_classes": n_classes, "hidden": widths,
                                       "dropout": float(dropout), "log_input": bool(log_input),
                                       "floor": float(floor)}
        self.in_channels, self.out_channels, self.n_classes = n_in, n_classes, n_classes
        self.input_bn = nn.BatchNorm1d(n_in)
        layers: list[nn.Module] = []
        w_prev = n_in
        for w in widths:
            layers += [nn.Linear(w_prev, w, bias=False), nn.BatchNorm1d(w), nn.ELU(), nn.Dropout(dropout)]
            w_prev = w
        self.layers = nn.Sequential(*layers, nn.Linear(w_prev, n_classes))
        _xavier(self)

    def forward(self, x: Tensor) -> Tensor:
        """Per-frame logits: float (B, n_in, T) → float (B, n_classes, T)."""
        check_input(x, self.in_channels, type(self).__name__)
        frames = x.permute(0, 2, 1).reshape(-1, self.in_channels)
        if self.config["log_input"]:
            frames = torch.log(torch.clamp(frames, min=self.config["floor"]))
        logits = self.layers(self.input_bn(frames))
        return logits.reshape(x.shape[0], -1, self.n_classes).permute(0, 2, 1)


# -- specs and summaries ---------------------------------------------------------------

#: Model classes that :func:`model_from_spec` can build.
MODEL_TYPES: dict[str, type[nn.Module]] = {
    "GammaCNN": GammaCNN,
    "LinearDecoder": LinearDecoder,
    "SConvNet": SConvNet,
    "AllConvNet": AllConvNet,
    "FrameMLP": FrameMLP,
    "StackedDecoder": StackedDecoder,
    "GRUDecoder": GRUDecoder,
    "LSTMDecoder": LSTMDecoder,
}


def model_to_spec(model: nn.Module) -> dict[str, Any]:
    """The architecture as JSON: ``{"spec_version", "kind", "config"}`` (no weights).

    Raises
    ------
    ModelError
        For a module that is not one of :data:`MODEL_TYPES`.
    """
    kind = type(model).__name__
    config = getattr(model, "config", None)
    if kind not in MODEL_TYPES or not isinstance(config, dict):
        raise ModelError(f"cannot write an architecture spec for a {kind}",
                         f"use one of the rtdecode.nn models: {sorted(MODEL_TYPES)}")
    return {"spec_version": SPEC_VERSION, "kind": kind, "config": dict(config)}


def model_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Build a model (fresh weights) from :func:`model_to_spec`'s dict.

    Raises
    ------
    ModelError
        If the spec is malformed, from another spec version, or names an unknown kind.
    """
    if not isinstance(spec, dict) or not {"kind", "config"} <= set(spec):
        raise ModelError(f"architecture spec must be a dict with 'kind' and 'config', got {spec!r}",
                         "write specs with rtdecode.nn.models.model_to_spec")
    if spec.get("spec_version", SPEC_VERSION) != SPEC_VERSION:
        raise ModelError(f"architecture spec version {spec.get('spec_version')} is not supported "
                         f"(this rtdecode reads {SPEC_VERSION})", "re-save the checkpoint with this version")
    kind = spec["kind"]
    if kind not in MODEL_TYPES:
        raise ModelError(f"unknown model kind {kind!r}", f"use one of {sorted(MODEL_TYPES)}")
    try:
        return MODEL_TYPES[kind](**spec["config"])
    except TypeError as exc:
        raise ModelError(f"invalid config for {kind}: {exc}",
                         "the spec was written by another version; rebuild the checkpoint") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``), all session stacks included."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def streaming_core(model: nn.Module, session: int = 0) -> StreamingModule:
    """The plain streaming module that export and verify run for ``model``.

    A :class:`GammaCNN` gives its stack for ``session``; a single layer is wrapped in a
    :class:`StreamingSequential`; any other :class:`StreamingModule` is returned as is.
    """
    if isinstance(model, GammaCNN):
        return model.as_streaming(session)
    if isinstance(model, StreamingLayer):
        return StreamingSequential(model)
    if isinstance(model, StreamingModule):
        return model
    raise ModelError(f"a {type(model).__name__} has no streaming step",
                     "use an rtdecode.nn model (GammaCNN, LinearDecoder, SConvNet, AllConvNet)")


def describe(model: nn.Module) -> dict[str, Any]:
    """Architecture summary: kind, config, parameter count, receptive field, states, layers.

    Returns
    -------
    dict
        JSON-serialisable. ``layers`` lists each leaf module with parameters as
        ``"name: Class(args) [n params]"``.
    """
    core = streaming_core(model)
    layers = []
    for name, m in model.named_modules():
        own = sum(p.numel() for p in m.parameters(recurse=False))
        if own and not list(m.children()):
            layers.append(f"{name}: {type(m).__name__}({m.extra_repr()}) [{own}]")
    spec = model_to_spec(model) if type(model).__name__ in MODEL_TYPES else None
    return {
        "kind": type(model).__name__,
        "config": spec["config"] if spec else None,
        "parameters": count_parameters(model),
        "in_channels": core.in_channels,
        "out_channels": core.out_channels,
        "receptive_field": core.receptive_field,
        "delay": core.delay,
        "state_shapes": [list(s) for s in core.state_shapes()],
        "layers": layers,
    }

