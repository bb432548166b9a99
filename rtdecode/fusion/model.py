"""The fusion model: a linear-Gaussian state-space model whose observation stacks the
decoders' outputs, with one block of rows of ``H`` / ``Q`` per decoder.

Seed 002's model (``noise_model="white"``)::

    x_t = A x_{t-1} + a + w_t,   w ~ N(0, W)     x: intended kinematics (d)
    z_t = H x_t     + c + q_t,   q ~ N(0, Q)     z = [y¹_t; y²_t; …]: decoder outputs (m = Σ k_i)

``A, a, W, H, c, Q`` are fitted by least squares (:func:`fit_fusion_model`) on a
fusion-training set that must be disjoint from the decoders' own training set (decoders
are over-fitted to their training data; fitting ``Q`` there would trust them too much).

Coloured decoder errors (``noise_model="ar1"``, an extension)
------------------------------------------------------------
Causal decoders smooth over time, so their errors are strongly autocorrelated (lag-1
correlation ≈ 0.7 for a Kalman or Wiener decoder at 50 ms frames) and lag the kinematics;
seed 002's model assumes white ``q``, and a filter built on it averages correlated errors
as if they were independent. The ``"ar1"`` model (Bryson & Henrikson's measurement
differencing) keeps the filter linear-Gaussian and still fitted by least squares:

* the filter state is ``s_t = [x_t; x_{t-1}]`` (``state_lags = 1``; an AR(2) kinematic model);
* each decoder's error is AR(1): with its own previous output, the pseudo-measurement
  ``z*_{i,t} = z_{i,t} − Ψ_i z_{i,t-1} = Hw_i s_t + cw_i + η_{i,t}`` has (nearly) white
  ``η``; ``Ψ_i, Hw_i, cw_i`` come from one least-squares regression of ``z_{i,t}`` on
  ``[s_t, z_{i,t-1}]`` and ``Qw`` is the covariance of its residuals;
* a frame for which decoder ``i`` has no previous output (first frame, a dropped frame) uses
  the plain model ``z_{i,t} = H_i s_t + c_i + q_i`` instead.

Each decoder's block of ``Ψ`` is its own, so decoders stay independent in time and can
report asynchronously. The model is stored as JSON (no pickle), so the daemon can load it
next to the ONNX decoders.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rtdecode.decoders.base import segment_slices
from rtdecode.decoders.statespace import LinearGaussianModel, fit_linear_gaussian, nearest_spd
from rtdecode.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = ["FusionModel", "NoiseModel", "fit_fusion_model", "lagged_state", "stack_outputs"]

FORMAT = "rtdecode.fusion.kalman/1"

NoiseModel = Literal["white", "ar1"]

_ARRAYS = ("Psi", "Hw", "cw", "Qw")


@dataclass(frozen=True)
class FusionModel:
    """A fitted fusion model.

    Attributes
    ----------
    ssm : LinearGaussianModel
        Over the filter state ``s`` (``D = d (1 + state_lags)``): ``A, a, W`` (D × D),
        the plain measurement model ``H, c, Q`` (m × D, m, m × m), ``x0, P0``.
    blocks : tuple of int
        Output count ``k_i`` of each decoder; rows ``offsets[i]:offsets[i] + k_i`` of ``H``,
        ``c``, ``Q`` (and of ``z``) belong to decoder ``i``.
    decoder_names : tuple of str
        One per decoder.
    state_names : tuple of str
        One per kinematic component (``d``; e.g. ``("vx", "vy")``).
    dt_s : float
        Time step of the model (the frame period it was fitted at), s.
    state_lags : int
        0 (state = ``x_t``) or 1 (state = ``[x_t; x_{t-1}]``).
    Psi : float64 (m, m) or None
        Block-diagonal AR(1) coefficients of the decoders' errors (``"ar1"`` only).
    Hw : float64 (m, D) or None
    cw : float64 (m,) or None
    Qw : float64 (m, m) or None
        Pseudo-measurement model ``z_t − Ψ z_{t-1} = Hw s_t + cw + η``, ``η ~ N(0, Qw)``.
    innovation_ratio : tuple of float
        Per decoder, the mean normalised innovation squared on the fusion-training set (the
        level the noise adaptation steers to; 1.0 when not calibrated).
    provenance : dict
        Free-form description of the training data.
    """

    ssm: LinearGaussianModel
    blocks: tuple[int, ...]
    decoder_names: tuple[str, ...]
    state_names: tuple[str, ...]
    dt_s: float
    state_lags: int = 0
    Psi: np.ndarray | None = None
    Hw: np.ndarray | None = None
    cw: np.ndarray | None = None
    Qw: np.ndarray | None = None
    innovation_ratio: tuple[float, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sum(self.blocks) != self.ssm.m or any(k < 1 for k in self.blocks):
            raise ConfigError(f"decoder blocks {self.blocks} do not add up to the {self.ssm.m} "
                              "observation rows", "give each decoder's output count")
        if len(self.decoder_names) != len(self.blocks):
            raise ConfigError(f"{len(self.decoder_names)} decoder names for {len(self.blocks)} blocks",
                              "give one name per decoder")
        if self.state_lags not in (0, 1) or self.ssm.d != len(self.state_names) * (1 + self.state_lags):
            raise ConfigError(f"{len(self.state_names)} state names with state_lags={self.state_lags} "
                              f"do not match a {self.ssm.d}-dimensional filter state",
                              "give one name per kinematic component")
        if not (np.isfinite(self.dt_s) and self.dt_s > 0):
            raise ConfigError(f"dt_s must be > 0, got {self.dt_s!r}", "use the frame period, s")
        present = [getattr(self, k) is not None for k in _ARRAYS]
        if any(present) and not all(present):
            raise ConfigError("the ar1 noise model needs Psi, Hw, cw and Qw together", "refit the model")
        if all(present):
            m, D = self.ssm.m, self.ssm.d
            for name, shape in (("Psi", (m, m)), ("Hw", (m, D)), ("cw", (m,)), ("Qw", (m, m))):
                if np.shape(getattr(self, name)) != shape:
                    raise ConfigError(f"fusion model: {name} has shape {np.shape(getattr(self, name))}, "
                                      f"expected {shape}", "refit the model")
        if self.innovation_ratio and len(self.innovation_ratio) != len(self.blocks):
            raise ConfigError("innovation_ratio needs one value per decoder", "refit the model")

    @property
    def n_decoders(self) -> int:
        """Number of fused decoders."""
        return len(self.blocks)

    @property
    def d(self) -> int:
        """Kinematic components (the first ``d`` entries of the filter state)."""
        return len(self.state_names)

    @property
    def noise_model(self) -> NoiseModel:
        """``"ar1"`` when the pseudo-measurement model is present, else ``"white"``."""
        return "ar1" if self.Psi is not None else "white"

    @property
    def offsets(self) -> tuple[int, ...]:
        """First row of each decoder's block."""
        return tuple(int(v) for v in np.r_[0, np.cumsum(self.blocks)[:-1]])

    def block(self, i: int) -> slice:
        """Rows of decoder ``i``."""
        o = int(sum(self.blocks[:i]))
        return slice(o, o + self.blocks[i])

    def with_innovation_ratio(self, ratio: Sequence[float] | np.ndarray) -> FusionModel:
        """A copy with the noise-adaptation calibration set."""
        return FusionModel(**{**self.__dict__, "innovation_ratio": tuple(float(r) for r in ratio)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        out: dict[str, Any] = {
            "format": FORMAT, "ssm": self.ssm.to_dict(), "blocks": list(self.blocks),
            "decoder_names": list(self.decoder_names), "state_names": list(self.state_names),
            "dt_s": self.dt_s, "state_lags": self.state_lags,
            "innovation_ratio": list(self.innovation_ratio), "provenance": self.provenance}
        for k in _ARRAYS:
            v = getattr(self, k)
            out[k] = None if v is None else np.asarray(v).tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FusionModel:
        """Inverse of :meth:`to_dict`."""
        if d.get("format") != FORMAT:
            raise ConfigError(f"fusion model format {d.get('format')!r} is not {FORMAT!r}",
                              "re-fit the fusion model with this version of rtdecode")
        arrays = {k: None if d.get(k) is None else np.asarray(d[k], dtype=np.float64) for k in _ARRAYS}
        return cls(ssm=LinearGaussianModel.from_dict(d["ssm"]), blocks=tuple(int(k) for k in d["blocks"]),
                   decoder_names=tuple(d["decoder_names"]), state_names=tuple(d["state_names"]),
                   dt_s=float(d["dt_s"]), state_lags=int(d.get("state_lags", 0)),
                   innovation_ratio=tuple(float(r) for r in d.get("innovation_ratio", [])),
                   provenance=dict(d.get("provenance", {})), **arrays)

    def save(self, path: str | Path) -> Path:
        """Write as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FusionModel:
        """Read a model written by :meth:`save`."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise ConfigError(f"cannot read fusion model {path}: {exc}",
                              "give a file written by FusionModel.save") from exc


def stack_outputs(outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Stack decoder outputs side by side.

    Parameters
    ----------
    outputs : sequence of float (n, k_i)

    Returns
    -------
    Z : float64 (n, Σ k_i)
    blocks : tuple of int
        ``k_i``.
    """
    arrs = [np.asarray(o, dtype=np.float64).reshape(np.shape(o)[0], -1) for o in outputs]
    if not arrs or len({a.shape[0] for a in arrs}) != 1:
        raise DataError(f"decoder outputs have lengths {[a.shape[0] for a in arrs]}",
                        "give every decoder's output for the same frames")
    return np.concatenate(arrs, axis=1), tuple(a.shape[1] for a in arrs)


def lagged_state(X: np.ndarray, segments: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``[x_t, x_{t-1}]`` for every frame that has a predecessor in its segment.

    Returns
    -------
    S : float64 (n', 2d)
    keep : int64 (n',)
        Frame indices of the rows of ``S``.
    """
    keep = np.concatenate([np.arange(sl.start + 1, sl.stop) for sl in segment_slices(X.shape[0], segments)])
    return np.concatenate([X[keep], X[keep - 1]], axis=1), keep


def _ols(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Y ≈ X Bᵀ + b`` by least squares; returns ``B``, ``b`` and the residuals."""
    X1 = np.column_stack([X, np.ones(X.shape[0])])
    coef, *_ = np.linalg.lstsq(X1, Y, rcond=None)
    return coef[:-1].T, coef[-1], Y - X1 @ coef


def fit_fusion_model(X: np.ndarray, outputs: Sequence[np.ndarray], *, dt_s: float,
                     segments: np.ndarray | None = None, decoder_names: Sequence[str] | None = None,
                     state_names: Sequence[str] | None = None, noise_model: NoiseModel = "white",
                     block_diagonal_q: bool = False, provenance: dict[str, Any] | None = None) -> FusionModel:
    """Fit the fusion model by least squares on a fusion-training set.

    Parameters
    ----------
    X : float (n, d)
        True kinematics per frame.
    outputs : sequence of float (n, k_i)
        Each decoder's output on the same frames (decoders fitted on *other* data).
    dt_s : float
        Frame period, s.
    segments : int (n,), optional
        Trial ids: transitions (and decoder-output lags) are taken within trials only.
    decoder_names, state_names : sequence of str, optional
    noise_model : {"white", "ar1"}
        Seed 002's white measurement noise, or AR(1) decoder errors (see the module docstring).
    block_diagonal_q : bool
        Zero the cross-decoder blocks of ``Q`` / ``Qw`` (decoders' errors treated as
        independent). The default keeps the full least-squares covariance, as seed 002 does;
        decoders fed by the same neurons have strongly correlated errors.

    Returns
    -------
    FusionModel
        Not yet calibrated for noise adaptation (``KalmanFusion.fit`` does that).
    """
    X = np.asarray(X, dtype=np.float64)
    Z, blocks = stack_outputs(outputs)
    if X.ndim != 2 or X.shape[0] != Z.shape[0]:
        raise DataError(f"kinematics X {X.shape} and decoder outputs {Z.shape} differ in length",
                        "give one row per frame")
    if noise_model not in ("white", "ar1"):
        raise ConfigError(f"noise_model={noise_model!r} is not 'white' or 'ar1'", "use 'white' or 'ar1'")
    d, m = X.shape[1], Z.shape[1]
    mask = np.zeros((m, m), dtype=bool)  # the per-decoder diagonal blocks
    o = 0
    for k in blocks:
        mask[o:o + k, o:o + k] = True
        o += k
    arrays: dict[str, Any] = {}
    state_lags = 0
    if noise_model == "white":
        ssm = fit_linear_gaussian(X, Z, segments)
    else:
        state_lags = 1
        S, keep = lagged_state(X, segments)
        seg = None if segments is None else np.asarray(segments)[keep]
        ssm = fit_linear_gaussian(S, Z[keep], seg)
        arrays = _fit_ar1_errors(S, Z, keep, blocks, mask if block_diagonal_q else None)
    if block_diagonal_q:
        ssm = LinearGaussianModel(A=ssm.A, a=ssm.a, W=ssm.W, H=ssm.H, c=ssm.c,
                                  Q=np.where(mask, ssm.Q, 0.0), x0=ssm.x0, P0=ssm.P0,
                                  fit_info=ssm.fit_info)
    names = (tuple(decoder_names) if decoder_names is not None
             else tuple(f"dec{i}" for i in range(len(blocks))))
    snames = tuple(state_names) if state_names is not None else tuple(f"x{i}" for i in range(d))
    return FusionModel(ssm=ssm, blocks=blocks, decoder_names=names, state_names=snames, dt_s=float(dt_s),
                       state_lags=state_lags, provenance=dict(provenance or {}), **arrays)


def _fit_ar1_errors(S: np.ndarray, Z: np.ndarray, keep: np.ndarray, blocks: Sequence[int],
                    diagonal: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per decoder i, by least squares: z_{i,t} = Hw_i s_t + Ψ_i z_{i,t-1} + cw_i + η_i.

    S : (len(keep), p) lagged states of the frames ``keep`` (those with a predecessor);
    Z : (n, m) all decoders' outputs; ``blocks`` their widths. ``diagonal`` (m, m) bool, when
    given, keeps only those entries of ``Qw`` (decoders' errors independent). Returns Psi (m, m),
    Hw (m, p), cw (m,), Qw (m, m).
    """
    m = Z.shape[1]
    Psi = np.zeros((m, m))
    Hw = np.zeros((m, S.shape[1]))
    cw = np.zeros(m)
    E = np.zeros((keep.size, m))
    starts = np.r_[0, np.cumsum(blocks)[:-1]].astype(int)
    for o0, k in zip(starts, blocks, strict=True):
        sl = slice(int(o0), int(o0) + k)
        B, b, R = _ols(np.column_stack([S, Z[keep - 1, sl]]), Z[keep, sl])
        Hw[sl] = B[:, :S.shape[1]]
        Psi[sl, sl] = B[:, S.shape[1]:]
        cw[sl] = b
        E[:, sl] = R
    dof = max(keep.size - (S.shape[1] + max(blocks) + 1), 1)
    Qw = nearest_spd(E.T @ E / dof)
    if diagonal is not None:
        Qw = np.where(diagonal, Qw, 0.0)
    rho = [float(np.max(np.abs(np.linalg.eigvals(Psi[o0:o0 + k, o0:o0 + k]))))
           for o0, k in zip(starts, blocks, strict=True)]
    logger.debug("ar1 fusion model: decoder error AR(1) spectral radii %s", np.round(rho, 3))
    return {"Psi": Psi, "Hw": Hw, "cw": cw, "Qw": Qw}
