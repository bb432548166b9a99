"""Gamma-function convolution kernels (seed 000), defined in seconds so they work at any rate.

Per (output, input) channel pair the kernel is a Gamma function of lag time ``t`` (s)::

    t_f(t) = (1/θ) · ln(1 + exp(θ · (t − t0)))        soft-plus "corner" at t0
    F(t)   = α · β² · t_f · exp(−β · t_f)

with three parameters: α, the area under the curve (∫F dt = α, since ∫β² t e^{−βt} dt = 1),
Xavier-initialised; β > 0 (1/s), the inverse time constant (the peak is ≈ 1/β after t0);
t0 > 0 (s), the time of the first non-zero point. β and t0 are stored as logarithms
(``β = exp(log_beta)``), as in the paper, and the logarithms are clamped to a wide range
(:data:`BETA_RANGE_PER_S`, :data:`T0_RANGE_S`) so the kernel stays positive and finite
for any raw parameter value.

Units and choices (check against the paper's Feature Engineering section):

- The paper computed in 10 ms time bins (TensorFlow, 100 Hz). Its θ = 10 is per bin:
  the soft-plus corner is ~1/θ bins = 1 ms wide. Read with t in seconds, θ = 10 /s would
  give a 100 ms corner and t_f(0) ≈ 64 ms, i.e. no Gamma shape at all. So ``theta`` is
  given in units of 1 / (10 ms) (the paper's value keeps its meaning) and converted to
  ``theta_per_s = theta / 0.01`` = 1000 /s; the kernel *shape in seconds* is then the
  same at every rate.
- A tap ``k`` (lag ``t = k / rate_hz``) gets the weight ``F(t) · Δt`` with
  ``Δt = 1 / rate_hz``: the Riemann sum of the continuous convolution ``∫F(τ) x(t−τ) dτ``.
  At 100 Hz this is exactly the paper's formula written in bins (β_bin = β·Δt,
  t_bin = t/Δt), and the DC gain stays ≈ α at any rate, so Xavier initialisation of α
  stays right at 1 kHz. (Without Δt the gain would grow with the rate.)
- Initial values: the paper randomises "the initial time to peak and delay in the order of
  10 ms". Here t0 and the time constant 1/β are drawn log-uniformly from 5–20 ms
  (:data:`T0_INIT_S`, :data:`BETA_INIT_PER_S` = 50–200 /s), so initial kernels peak
  10–40 ms after the lag-0 tap and decay well inside the 300 ms kernel.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from torch import Tensor, nn

from rtdecode.errors import ModelError
from rtdecode.nn.layers import CausalConv1d, StreamingLayer, causal_conv, check_input

logger = logging.getLogger(__name__)

__all__ = [
    "BETA_INIT_PER_S",
    "BETA_RANGE_PER_S",
    "PAPER_BIN_S",
    "T0_INIT_S",
    "T0_RANGE_S",
    "GammaConv1d",
    "gamma_kernel",
]

#: The paper's time bin (s); ``theta`` is expressed per bin of this length.
PAPER_BIN_S = 0.01
#: Range of the initial β, 1/s (log-uniform): time constants 5–20 ms.
BETA_INIT_PER_S = (50.0, 200.0)
#: Range of the initial t0, s (log-uniform).
T0_INIT_S = (0.005, 0.020)
#: β is clamped to this range, 1/s (keeps the kernel positive and finite).
BETA_RANGE_PER_S = (1e-2, 1e5)
#: t0 is clamped to this range, s.
T0_RANGE_S = (1e-6, 1e2)


def gamma_kernel(t: Tensor, alpha: Tensor, beta: Tensor, t0: Tensor, theta_per_s: float) -> Tensor:
    """Evaluate ``F(t)`` for every channel pair.

    Parameters
    ----------
    t : float (L,)
        Lag times, s.
    alpha : float (K, C)
        Area under each curve (units of the output per unit input per second of input).
    beta : float (K, C)
        Inverse time constants, 1/s (> 0).
    t0 : float (K, C)
        Corner times, s (> 0).
    theta_per_s : float
        Corner sharpness, 1/s.

    Returns
    -------
    float (K, C, L)
        ``F(t)`` (per second; multiply by Δt for a tap weight).
    """
    tf = F.softplus(theta_per_s * (t - t0[..., None])) / theta_per_s
    b = beta[..., None]
    return alpha[..., None] * b * b * tf * torch.exp(-b * tf)


def _log_uniform(shape: tuple[int, ...], lo: float, hi: float) -> Tensor:
    return torch.empty(shape).uniform_(math.log(lo), math.log(hi))


class GammaConv1d(StreamingLayer):
    """Causal convolution whose kernels are Gamma functions of time (seed 000).

    ``y[:, k, t] = b[k] + Σ_c Σ_{j=0}^{taps-1} F_kc(j / rate_hz) · Δt · x[:, c, t − j]``

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out (dense across channels).
    kernel_s : float
        Kernel length, s; ``taps = round(kernel_s * rate_hz)`` (300 ms: 30 taps at
        100 Hz, 300 taps at 1 kHz).
    rate_hz : float
        Frame rate of the input, Hz.
    theta : float
        Corner sharpness in units of 1 / (10 ms) (the paper's θ = 10; see module notes).
    bias : bool
        Learn an additive bias per output channel.

    Attributes
    ----------
    alpha : Parameter (out_ch, in_ch)
        Areas (Xavier-uniform with fan_in = in_ch, fan_out = out_ch).
    log_beta : Parameter (out_ch, in_ch)
        ``ln β``, β in 1/s.
    log_t0 : Parameter (out_ch, in_ch)
        ``ln t0``, t0 in s.
    bias : Parameter (out_ch,) or None
    taps : int
        Kernel length, frames.
    """

    lags_s: Tensor

    def __init__(self, in_ch: int, out_ch: int, kernel_s: float, rate_hz: float, theta: float = 10.0,
                 bias: bool = True) -> None:
        super().__init__()
        if not (rate_hz > 0 and math.isfinite(rate_hz)):
            raise ModelError(f"GammaConv1d: rate_hz must be a positive number of Hz, got {rate_hz!r}",
                             "pass the frame rate the layer runs at")
        taps = int(round(kernel_s * rate_hz))
        if taps < 1:
            raise ModelError(f"GammaConv1d: kernel_s={kernel_s!r} s at {rate_hz:g} Hz gives {taps} taps",
                             "use a kernel of at least one frame (kernel_s ≥ 1 / rate_hz)")
        if not (theta > 0 and math.isfinite(theta)):
            raise ModelError(f"GammaConv1d: theta must be > 0, got {theta!r}", "use the paper's 10")
        self.in_channels, self.out_channels = int(in_ch), int(out_ch)
        self.rate_hz, self.kernel_s, self.theta = float(rate_hz), float(kernel_s), float(theta)
        self.theta_per_s = self.theta / PAPER_BIN_S
        self.taps = taps
        shape = (self.out_channels, self.in_channels)
        self.alpha = nn.Parameter(torch.empty(shape))
        nn.init.xavier_uniform_(self.alpha)
        self.log_beta = nn.Parameter(-_log_uniform(shape, 1.0 / BETA_INIT_PER_S[1], 1.0 / BETA_INIT_PER_S[0]))
        self.log_t0 = nn.Parameter(_log_uniform(shape, *T0_INIT_S))
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        # lag of each tap, oldest first (the order of a plain conv over [state, x]), s
        lags = torch.arange(self.taps - 1, -1, -1, dtype=torch.float32) / self.rate_hz
        self.register_buffer("lags_s", lags, persistent=False)

    @property
    def state_frames(self) -> int:
        return self.taps - 1

    @property
    def beta(self) -> Tensor:
        """β, 1/s, (out_ch, in_ch); always in :data:`BETA_RANGE_PER_S`."""
        lo, hi = BETA_RANGE_PER_S
        return torch.exp(self.log_beta.clamp(math.log(lo), math.log(hi)))

    @property
    def t0(self) -> Tensor:
        """t0, s, (out_ch, in_ch); always in :data:`T0_RANGE_S`."""
        lo, hi = T0_RANGE_S
        return torch.exp(self.log_t0.clamp(math.log(lo), math.log(hi)))

    def kernel(self, t: Tensor) -> Tensor:
        """``F(t)`` at lag times ``t`` (s, shape (L,)) → (out_ch, in_ch, L), per second."""
        return gamma_kernel(t, self.alpha, self.beta, self.t0, self.theta_per_s)

    def materialize(self) -> Tensor:
        """The equivalent plain conv weight.

        Returns
        -------
        float (out_ch, in_ch, taps)
            ``F(lag) / rate_hz``, oldest lag first (the order of a conv over ``[state, x]``).
        """
        return self.kernel(self.lags_s) / self.rate_hz

    def forward(self, x: Tensor) -> Tensor:
        """Offline pass with front zero-padding: (B, in_ch, T) → (B, out_ch, T)."""
        check_input(x, self.in_channels, "GammaConv1d")
        return F.conv1d(F.pad(x, (self.state_frames, 0)), self.materialize(), self.bias)

    def step(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Streaming step: ``(y (B, out_ch, T), new_state (B, in_ch, taps - 1))``."""
        check_input(x, self.in_channels, "GammaConv1d")
        return causal_conv(x, self.materialize(), self.bias, 1, state, self.state_frames)

    def to_causal_conv(self) -> CausalConv1d:
        """A :class:`CausalConv1d` with the materialised kernel (for export: standard ops only)."""
        conv = CausalConv1d(self.in_channels, self.out_channels, self.taps, bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(self.materialize())
            if self.bias is not None and conv.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.to(self.alpha.device)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_s={self.kernel_s:g}, "
                f"rate_hz={self.rate_hz:g}, taps={self.taps}, theta={self.theta:g}")
