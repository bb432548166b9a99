r"""M2M-Net in torch (seed 001, section 2.5): autoencoder, mappers, heads, and the exported whole.

::

    volume (B, 64, 64, 64) ─ min-max ─► Encoder ─► code (B, 1, 16, 16, 16) ─ min-max ─┐
        conv3³(1→c1) ELU pool2 · conv3³(c1→c2) ELU pool2 · conv1³(c2→1) ELU          │
    Decoder (training only): conv3³(1→c2) ELU up2 · conv3³(c2→c1) ELU up2 · conv1³(c1→1)│
                                                                                      ▼
    Mapper (depth 3): [conv3³ BN act pool2] × 3 with 16 → 32 → 64 filters (depth 6: two convs
    per block), flatten, dense(128) act dropout(0.15), dense(n_out), sigmoid / tanh

    Direct:  m̂ = f_D(x)                 (sigmoid over the k muscles)
    Synergy: m̂ = f_S(x) · B              (sigmoid over the r synergy activations; B (r, k) NMF)
    Both:    m̂ = f_S(x) · B + f_D*(x)    (f_D*: tanh, linear hidden activations, fitted on the
                                          Synergy model's training errors)

All outputs are min-max scaled muscle responses; :class:`M2MNet` (the exported graph) adds the
input transform and scaling in front and the inverse output scaling behind, so it maps the
|E| volume (V/m) to MEPs (µV).
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = ["Autoencoder", "Decoder", "Encoder", "M2MNet", "Mapper", "ThroughBasis", "conv_l1",
           "count_params"]

Head = Literal["direct", "synergy", "both"]


class Encoder(nn.Module):
    """64³ volume → 16³ single-channel code (two conv–ELU–maxpool blocks, a 1³ conv, ELU)."""

    def __init__(self, channels: tuple[int, int] = (32, 64)) -> None:
        super().__init__()
        c1, c2 = channels
        self.channels = (c1, c2)
        self.net = nn.Sequential(
            nn.Conv3d(1, c1, 3, padding=1), nn.ELU(), nn.MaxPool3d(2),
            nn.Conv3d(c1, c2, 3, padding=1), nn.ELU(), nn.MaxPool3d(2),
            nn.Conv3d(c2, 1, 1), nn.ELU())

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, X, Y, Z) → (B, 1, X/4, Y/4, Z/4)."""
        return self.net(x)


class Decoder(nn.Module):
    """The symmetric decoder: code → reconstructed volume (linear output)."""

    def __init__(self, channels: tuple[int, int] = (32, 64)) -> None:
        super().__init__()
        c1, c2 = channels
        self.net = nn.Sequential(
            nn.Conv3d(1, c2, 3, padding=1), nn.ELU(), nn.Upsample(scale_factor=2),
            nn.Conv3d(c2, c1, 3, padding=1), nn.ELU(), nn.Upsample(scale_factor=2),
            nn.Conv3d(c1, 1, 1))

    def forward(self, z: Tensor) -> Tensor:
        """(B, 1, X/4, Y/4, Z/4) → (B, 1, X, Y, Z)."""
        return self.net(z)


class Autoencoder(nn.Module):
    """Encoder and decoder, trained to reconstruct the scaled volumes."""

    def __init__(self, channels: tuple[int, int] = (32, 64)) -> None:
        super().__init__()
        self.encoder = Encoder(channels)
        self.decoder = Decoder(channels)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction of ``x`` (B, 1, X, Y, Z)."""
        return self.decoder(self.encoder(x))


class Mapper(nn.Module):
    """Code → responses: conv blocks, one dense hidden layer with dropout, sigmoid / tanh output.

    Parameters
    ----------
    code_shape : (int, int, int)
        Shape of the code (each divisible by 8).
    n_out : int
        Outputs (muscles, or synergies).
    depth : {3, 6}
        Conv layers: one (3) or two (6) per block.
    out : {"sigmoid", "tanh"}
        Output activation.
    hidden : {"relu", "linear"}
        Activation after the conv blocks and the dense layer (the residual net: linear).
    channels : tuple of int
        Filters of the three blocks.
    dense : int
        Units of the hidden dense layer.
    dropout : float
        Dropout after the hidden dense layer.
    """

    def __init__(self, code_shape: tuple[int, int, int], n_out: int, depth: int = 3,
                 out: Literal["sigmoid", "tanh"] = "sigmoid",
                 hidden: Literal["relu", "linear"] = "relu",
                 channels: tuple[int, ...] = (16, 32, 64), dense: int = 128, dropout: float = 0.15) -> None:
        super().__init__()
        if depth not in (3, 6) or any(s % 8 for s in code_shape):
            raise ValueError(f"mapper depth {depth} / code shape {code_shape}: need depth 3 or 6 "
                             "and a code divisible by 8 per axis")
        layers: list[nn.Module] = []
        cin = 1
        for c in channels:
            layers.append(nn.Conv3d(cin, c, 3, padding=1))
            if depth == 6:
                layers.append(nn.Conv3d(c, c, 3, padding=1))
            layers += [nn.BatchNorm3d(c), _act(hidden), nn.MaxPool3d(2)]
            cin = c
        n_flat = cin * (code_shape[0] // 8) * (code_shape[1] // 8) * (code_shape[2] // 8)
        self.n_out = n_out
        self.hidden = hidden
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(n_flat, dense), _act(hidden), nn.Dropout(dropout),
                                  nn.Linear(dense, n_out), nn.Sigmoid() if out == "sigmoid" else nn.Tanh())

    def forward(self, code: Tensor) -> Tensor:
        """(B, 1, *code_shape) → (B, n_out)."""
        return self.head(self.features(code))


class ThroughBasis(nn.Module):
    """A Synergy mapper seen in muscle space: ``a · B`` with the basis B (r, k) fixed (training only)."""

    basis: Tensor

    def __init__(self, mapper: Mapper, basis: Tensor) -> None:
        super().__init__()
        self.mapper = mapper
        self.register_buffer("basis", basis.float())

    def forward(self, code: Tensor) -> Tensor:
        """(B, 1, *code_shape) → (B, k)."""
        return self.mapper(code) @ self.basis


def _act(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else nn.Identity()


def conv_l1(module: nn.Module) -> Tensor:
    """Sum of |w| over the conv kernels of ``module`` (the ℓ1 penalty of seed 001)."""
    terms = [m.weight.abs().sum() for m in module.modules() if isinstance(m, nn.Conv3d)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def count_params(*modules: nn.Module) -> int:
    """Trainable parameters of the modules together."""
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)


class M2MNet(nn.Module):
    """The exported whole: |E| volume (V/m) → MEPs (µV) for the three heads.

    Parameters
    ----------
    encoder : Encoder
    members : list of dict
        Per ensemble member, its ``direct``, ``synergy`` and ``residual`` :class:`Mapper`\\ s;
        every head is the mean of the members' (seed 001 trains 12 models per setting).
    basis : Tensor (r, k)
        Synergy basis ``B`` (scaled units).
    scaling : dict of float tensors
        ``in_lo``, ``in_span`` (volume), ``code_lo``, ``code_span``, ``out_lo``, ``out_span`` (k,).
    firing : (float, float) or None
        ``(e50, slope)`` V/m: apply the firing sigmoid to |E| first (0 where |E| = 0).
    """

    in_lo: Tensor
    in_span: Tensor
    code_lo: Tensor
    code_span: Tensor
    out_lo: Tensor
    out_span: Tensor
    basis: Tensor
    heads = ("direct", "synergy", "both")

    def __init__(self, encoder: Encoder, members: list[dict[str, Mapper]], basis: Tensor,
                 scaling: dict[str, Tensor], firing: tuple[float, float] | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.members = nn.ModuleList([nn.ModuleDict(m) for m in members])
        self.register_buffer("basis", basis.float())
        for k, v in scaling.items():
            self.register_buffer(k, v.float())
        self.firing = firing

    def scaled_code(self, volume: Tensor) -> Tensor:
        """(B, X, Y, Z) |E| → the min-max scaled code (B, 1, X/4, Y/4, Z/4)."""
        x = volume
        if self.firing is not None:
            e50, slope = self.firing
            x = torch.where(x > 0, torch.sigmoid((x - e50) / slope), torch.zeros_like(x))
        x = ((x - self.in_lo) / self.in_span).unsqueeze(1)
        return (self.encoder(x) - self.code_lo) / self.code_span

    def forward(self, volume: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """MEPs (B, k), µV, of the heads Direct, Synergy and Both (members averaged)."""
        c = self.scaled_code(volume)
        direct, syn, res = [], [], []
        for member in self.members:
            m: nn.ModuleDict = member  # type: ignore[assignment]
            direct.append(m["direct"](c))
            syn.append(m["synergy"](c) @ self.basis)
            res.append(m["residual"](c))
        d, s = torch.stack(direct).mean(0), torch.stack(syn).mean(0)
        b = s + torch.stack(res).mean(0)
        return tuple(z * self.out_span + self.out_lo for z in (d, s, b))  # type: ignore[return-value]
