"""Kalman decision fusion of several decoders (seed 002), offline and live.

The state is the intended kinematics; the measurement at a frame stacks whichever decoders
reported for it (model: :mod:`rtdecode.fusion.model`). Two ways to run it:

Offline
    :meth:`KalmanFusion.filter` — ``Z`` (n, m) → ``X̂`` (n, d), one predict and one joint
    update per frame (a decoder whose rows are non-finite or masked is left out of that frame).

Live (asynchronous decoders)
    The daemon calls, each tick and for each fresh decoder output row,
    :meth:`KalmanFusion.update` ``(decoder, z, t_source)``, then
    :meth:`KalmanFusion.estimate` ``(t_now)``. Time is discretised on the model's frame grid
    (``dt_s``): a measurement is fused at the frame nearest its *source* time (the time of
    the newest input sample it depends on), not at its arrival. A measurement for a frame the
    filter has already passed (a slow or late decoder, or a second decoder reporting for the
    same frame) is stored in a bounded history and the filter re-runs from that frame —
    exact out-of-sequence fusion while the frame is within ``history`` frames. Measurements of
    the same frame are fused jointly with the cross-decoder blocks of ``Q``, so feeding a
    synchronous sequence decoder by decoder gives exactly :meth:`filter`.

Health: a decoder is *active* while its last fused measurement is at most ``stale_after_s``
old and its latest report was finite and healthy. Non-finite, unhealthy (``healthy=False``,
e.g. a failing ONNX session holding its last value) and too-old measurements are never fused;
each episode is counted and logged once. :meth:`estimate` always returns a finite value, says
which decoders are active, and flags ``DEGRADED`` (some excluded) / ``STALE`` (none active:
the value is a prediction only).

Adaptive measurement noise: decoder ``i``'s rows of the measurement covariance are scaled by
``λ_i`` (cross terms by ``√(λ_i λ_j)``). Each fused frame gives the decoder's normalised
innovation squared ``r_i = ν_iᵀ S_ii⁻¹ ν_i / k_i`` (``S`` the innovation covariance the filter
used), and ``λ_i ← clip(λ_i · (1 + α (r_i / κ_i − 1)))`` with ``α = dt / noise_tau_s`` — a
stochastic-approximation step towards ``E[r_i] = κ_i``, where ``κ_i`` is the mean of ``r_i``
on the fusion-training set with ``λ = 1`` (:attr:`FusionModel.innovation_ratio`). A decoder
that behaves as in training keeps ``λ ≈ 1`` even where the model's white-noise assumption is
imperfect; one whose innovations grow is trusted less until they are back to their training
level (``λ`` can also fall, to ``noise_scale_bounds[0]``, for a decoder that got better).
Innovation covariance matching (``R̂ = ν νᵀ − H P⁻ Hᵀ``, Mehra 1972) was tried first and
rejected: with correlated decoder errors it subtracts two large, nearly equal matrices and
its calibration level can even be negative. A measurement's statistic is committed when that
decoder's next measurement arrives, so re-filtering the same frame never counts it twice and
the ``λ`` used for a frame depends only on earlier frames — the rule :meth:`filter` follows too.

Numerics: Joseph-form updates, symmetrised covariances, linear solves, jitter only when a
Cholesky factorisation fails (see :mod:`rtdecode.decoders.statespace`).

Per tick the filter touches preallocated ring buffers (``history`` frames) and a cache of the
matrices of each subset of decoders (at most ``4 ** n_decoders`` entries); the only
allocations are the small temporaries of numpy expressions — nothing grows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtdecode.decoders.statespace import ensure_spd, joseph_update, kalman_predict
from rtdecode.errors import ConfigError, StageError
from rtdecode.fusion.model import FusionModel, NoiseModel, fit_fusion_model, stack_outputs
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

__all__ = ["FusionEstimate", "KalmanFusion"]


@dataclass(frozen=True)
class FusionEstimate:
    """The fused estimate at one time.

    Attributes
    ----------
    t : float
        Time of the estimate, s.
    x : float64 (d,)
        Kinematics (always finite).
    std : float64 (d,)
        Posterior standard deviation of each component.
    active : tuple of bool
        Per decoder: fused recently and healthy.
    predicted_frames : int
        Frames predicted past the newest fused frame (0 = the newest frame's posterior).
    degraded : bool
        Some decoder is excluded (stale, non-finite, failing or never seen).
    stale : bool
        No decoder is active: ``x`` is a prediction only.
    flags : int
        :class:`rtdecode.types.Flags` bits (``DEGRADED``, ``STALE``).
    """

    t: float
    x: np.ndarray
    std: np.ndarray
    active: tuple[bool, ...]
    predicted_frames: int
    degraded: bool
    stale: bool
    flags: int


@dataclass
class _Group:
    """Cached matrices of one set of decoders fused together in a frame."""

    members: tuple[int, ...]
    whitened: tuple[bool, ...]   # per member: pseudo-measurement (ar1) or plain model
    idx: np.ndarray              # rows of z (concatenated member blocks)
    owner: np.ndarray            # member decoder of each row
    rows: dict[int, slice]       # rows of each member within the group
    H: np.ndarray
    c: np.ndarray
    Q0: np.ndarray               # nominal (λ = 1) covariance
    bdmask: np.ndarray           # True on the members' diagonal blocks
    starts: np.ndarray           # first row of each member (for per-member sums)
    sizes: np.ndarray            # rows of each member
    Psi: np.ndarray | None       # (len, len): subtract Psi @ z_prev[idx] (None if no member whitened)


class KalmanFusion:
    """Kalman fusion filter over a :class:`FusionModel`.

    Parameters
    ----------
    model : FusionModel
    history : int
        Frames kept for out-of-sequence re-filtering (>= 2). A measurement older than
        ``history - 1`` frames behind the newest is dropped (and counted).
    stale_after_s : float
        A decoder without a fused measurement for this long is inactive.
    adapt_noise : bool
        Adapt each decoder's measurement-noise scale from its innovations.
    noise_tau_s : float
        Time constant of the innovation averaging, s.
    noise_scale_bounds : (float, float)
        Bounds of each decoder's scale ``λ_i``.
    reset_after_s : float
        When the filter has to predict across a gap longer than this, it restarts from the
        model's initial state instead (a long prediction carries no information).

    Attributes
    ----------
    noise_scale : float64 (n_decoders,)
        Current ``λ_i``.
    counts : dict of str to int64 (n_decoders,)
        ``fused``, ``nonfinite``, ``unhealthy``, ``too_old``, ``replaced`` per decoder.
    n_jitter : int
        Covariance repairs (stays 0 in healthy operation).
    n_refused : int
        Updates refused because they would have made the state non-finite.
    """

    def __init__(self, model: FusionModel, *, history: int = 64, stale_after_s: float = 0.25,
                 adapt_noise: bool = True, noise_tau_s: float = 2.0,
                 noise_scale_bounds: tuple[float, float] = (0.25, 100.0),
                 reset_after_s: float = 5.0) -> None:
        if int(history) < 2:
            raise ConfigError(f"history must be >= 2 frames, got {history}", "use e.g. 64")
        lo, hi = (float(v) for v in noise_scale_bounds)
        if not (0 < lo <= 1.0 <= hi):
            raise ConfigError(f"noise_scale_bounds {noise_scale_bounds} must satisfy 0 < lo <= 1 <= hi",
                              "use e.g. (0.25, 100)")
        for label, value in (("stale_after_s", stale_after_s), ("noise_tau_s", noise_tau_s),
                             ("reset_after_s", reset_after_s)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{label} must be > 0, got {value!r}", "give a positive time in s")
        self.model = model
        s = model.ssm
        self.D, self.d, self.m, self.n_decoders = s.d, model.d, s.m, model.n_decoders
        self.dt_s = model.dt_s
        self.history = int(history)
        self.stale_after_s = float(stale_after_s)
        self.adapt_noise = bool(adapt_noise)
        self.noise_tau_s = float(noise_tau_s)
        self.alpha = min(1.0, self.dt_s / self.noise_tau_s)
        self.noise_scale_bounds = (lo, hi)
        self.reset_after_frames = max(1, int(round(reset_after_s / self.dt_s)))
        self._A, self._a, self._W = s.A, s.a, s.W
        self._whiten = model.Psi is not None
        # pseudo-measurement model (ar1); the plain model stands in when absent (never used then)
        self._Psi = model.Psi if model.Psi is not None else np.zeros((s.m, s.m))
        self._Hw = model.Hw if model.Hw is not None else s.H
        self._cw = model.cw if model.cw is not None else s.c
        self._Qw = model.Qw if model.Qw is not None else s.Q
        slices = [model.block(i) for i in range(self.n_decoders)]
        self._blocks = [np.arange(sl.start, sl.stop) for sl in slices]
        self._bits = 1 << np.arange(self.n_decoders)
        self._kappa = (np.asarray(model.innovation_ratio, dtype=np.float64) if model.innovation_ratio
                       else np.ones(self.n_decoders))
        self._kappa = np.where(np.isfinite(self._kappa), np.maximum(self._kappa, 1e-3), 1.0)
        self._groups: dict[tuple[int, int], _Group] = {}
        # ring buffers (preallocated)
        H = self.history
        self._post_x = np.zeros((H, self.D))
        self._post_P = np.zeros((H, self.D, self.D))
        self._z = np.zeros((H, self.m))
        self._present = np.zeros((H, self.n_decoders), dtype=bool)
        self._no_prev = np.zeros(self.n_decoders, dtype=bool)
        # adaptation
        self.noise_scale = np.ones(self.n_decoders)
        self._pending_r = np.zeros(self.n_decoders)
        self._r = np.zeros(self.n_decoders)
        self._pending_step = np.full(self.n_decoders, -1, dtype=np.int64)
        self._pending_valid = np.zeros(self.n_decoders, dtype=bool)
        self.counts = {k: np.zeros(self.n_decoders, dtype=np.int64)
                       for k in ("fused", "nonfinite", "unhealthy", "too_old", "replaced")}
        self.n_jitter = 0
        self.n_refused = 0
        self.n_resets = 0
        self.reset()

    # ------------------------------------------------------------------ construction
    @classmethod
    def fit(cls, X: np.ndarray, outputs: Sequence[np.ndarray], *, dt_s: float,
            segments: np.ndarray | None = None, decoder_names: Sequence[str] | None = None,
            state_names: Sequence[str] | None = None, noise_model: NoiseModel = "white",
            block_diagonal_q: bool = False, calibrate: bool = True, **kwargs: Any) -> KalmanFusion:
        """Fit a :class:`FusionModel` (:func:`fit_fusion_model`), calibrate the noise
        adaptation on the same data, and wrap it. Other keyword arguments go to the constructor.
        """
        model = fit_fusion_model(X, outputs, dt_s=dt_s, segments=segments, decoder_names=decoder_names,
                                 state_names=state_names, noise_model=noise_model,
                                 block_diagonal_q=block_diagonal_q)
        if calibrate:
            Z, _ = stack_outputs(outputs)
            probe = cls(model, **{**kwargs, "adapt_noise": False})
            model = model.with_innovation_ratio(probe.innovation_levels(Z, segments=segments))
        return cls(model, **kwargs)

    def _group(self, mask: int, white: int) -> _Group:
        key = (mask, white)
        g = self._groups.get(key)
        if g is None:  # at most 4 ** n_decoders entries
            s = self.model.ssm
            members = tuple(i for i in range(self.n_decoders) if mask >> i & 1)
            whitened = tuple(bool(white >> i & 1) for i in members)
            idx = np.concatenate([self._blocks[i] for i in members])
            owner = np.concatenate([np.full(self._blocks[i].size, i) for i in members])
            rows, o = {}, 0
            for i in members:
                rows[i] = slice(o, o + self._blocks[i].size)
                o += self._blocks[i].size
            Hrows, crows = [], []
            for i, w in zip(members, whitened, strict=True):
                b = self._blocks[i]
                Hrows.append(self._Hw[b] if w else s.H[b])
                crows.append(self._cw[b] if w else s.c[b])
            Q0 = np.zeros((idx.size, idx.size))
            for kind, Qsrc in ((True, self._Qw), (False, s.Q)):
                sel = np.concatenate([np.arange(rows[i].start, rows[i].stop)
                                      for i, w in zip(members, whitened, strict=True) if w == kind] or
                                     [np.zeros(0, dtype=np.int64)])
                if sel.size:
                    Q0[np.ix_(sel, sel)] = Qsrc[np.ix_(idx[sel], idx[sel])]
            Psi = None
            if any(whitened):
                Psi = np.zeros((idx.size, idx.size))
                for i, w in zip(members, whitened, strict=True):
                    if w:
                        b = self._blocks[i]
                        Psi[rows[i], rows[i]] = self._Psi[np.ix_(b, b)]
            bdmask = np.zeros(Q0.shape, dtype=bool)
            for i in members:
                bdmask[rows[i], rows[i]] = True
            g = _Group(members=members, whitened=whitened, idx=idx, owner=owner, rows=rows,
                       H=np.concatenate(Hrows), c=np.concatenate(crows), Q0=Q0, bdmask=bdmask,
                       starts=np.array([rows[i].start for i in members]),
                       sizes=np.array([self._blocks[i].size for i in members], dtype=np.float64), Psi=Psi)
            self._groups[key] = g
        return g

    # ------------------------------------------------------------------ core steps
    def _predict(self, x: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return kalman_predict(x, P, self._A, self._a, self._W)

    def _key(self, pres: np.ndarray, prev_pres: np.ndarray) -> tuple[int, int]:
        mask = int(self._bits[pres].sum())
        white = int(self._bits[pres & prev_pres].sum()) if self._whiten else 0
        return mask, white

    def _pseudo(self, g: _Group, z: np.ndarray, z_prev: np.ndarray) -> np.ndarray:
        zg = z[g.idx]
        if g.Psi is not None:
            zg = zg - g.Psi @ z_prev[g.idx]
        return zg

    def _stats(self, g: _Group, nu: np.ndarray, S: np.ndarray, r: np.ndarray) -> None:
        """Normalised innovation squared of each member: ``ν_iᵀ S_ii⁻¹ ν_i / k_i``."""
        members = list(g.members)
        try:
            sol = np.linalg.solve(S * g.bdmask, nu)  # block-diagonal solve: one block per member
        except np.linalg.LinAlgError:  # numerically singular S: no information on the noise level
            r[members] = self._kappa[members]
            return
        r[members] = np.add.reduceat(nu * sol, g.starts) / g.sizes

    def _fuse(self, x: np.ndarray, P: np.ndarray, z: np.ndarray, z_prev: np.ndarray, key: tuple[int, int],
              scale: np.ndarray, r: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray, _Group | None, np.ndarray | None, np.ndarray | None]:
        """Joint Joseph update with the decoders of ``key`` (present / whitened bit masks).

        Returns the posterior, the group, the gain and the innovation (``None`` when the update
        was refused); fills ``r`` (per decoder) with the members' innovation statistics when given.
        """
        if not key[0]:
            return x, P, None, None, None
        g = self._group(*key)
        zg = self._pseudo(g, z, z_prev)
        sq = np.sqrt(scale[g.owner])
        Qg = g.Q0 * np.outer(sq, sq)
        try:
            xn, Pn, nu, K = joseph_update(x, P, zg, g.H, g.c, Qg)
        except np.linalg.LinAlgError:
            xn = Pn = np.full(1, np.nan)
        if not math.isfinite(float(xn.sum()) + float(Pn.sum())):
            self.n_refused += 1
            return x, P, g, None, None  # refuse an update that would poison the state
        Pn, jittered = ensure_spd(Pn)
        self.n_jitter += int(jittered)
        if r is not None:
            self._stats(g, nu, g.H @ P @ g.H.T + Qg, r)
        return xn, Pn, g, K, nu

    def _commit(self, i: int, r: float, scale: np.ndarray) -> None:
        """One stochastic-approximation step of ``λ_i`` towards ``E[r_i] = κ_i``."""
        lo, hi = self.noise_scale_bounds
        step = 1.0 + self.alpha * (r / self._kappa[i] - 1.0)  # > 0: r >= 0 and alpha <= 1
        new = scale[i] * step
        scale[i] = min(hi, max(lo, new)) if math.isfinite(new) else hi

    # ------------------------------------------------------------------ offline
    def _offline_inputs(self, Z: np.ndarray, mask: np.ndarray | None, segments: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the offline recursion reads per frame: Z (n, m) with absent decoders' values zeroed,
        segment starts bool (n,), and the bit masks int64 (n,) of the decoders present and of
        those whitened (present in this frame and the previous one of the same segment)."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.m:
            raise StageError(f"Z has shape {Z.shape}, expected (n, {self.m})",
                             "stack the decoders' outputs in the model's block order")
        n = Z.shape[0]
        present = np.ones((n, self.n_decoders), dtype=bool) if mask is None else np.asarray(mask, bool).copy()
        for i, b in enumerate(self._blocks):
            present[:, i] &= np.isfinite(Z[:, b]).all(axis=1)
        Zc = Z.copy()
        for i, b in enumerate(self._blocks):
            Zc[np.ix_(~present[:, i], b)] = 0.0
        start = np.zeros(n, dtype=bool)
        start[0:1] = True
        if segments is not None:
            seg = np.asarray(segments)
            start[1:] |= seg[1:] != seg[:-1]
        prev = np.zeros_like(present)
        prev[1:] = present[:-1]
        prev[start] = False
        masks = present.astype(np.int64) @ self._bits
        whites = (present & prev).astype(np.int64) @ self._bits if self._whiten else np.zeros(n, np.int64)
        return Zc, start, masks, whites

    def _offline(self, Z: np.ndarray, mask: np.ndarray | None, segments: np.ndarray | None,
                 adapt: bool, collect: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The offline recursion: fused states (n, d); with ``collect``, per decoder the sums of
        its innovation statistic under nominal noise (n_decoders,) and their counts."""
        Zc, start, masks, whites = self._offline_inputs(Z, mask, segments)
        n = Zc.shape[0]
        s = self.model.ssm
        out = np.empty((n, self.d))
        r_sum = np.zeros(self.n_decoders)
        r_n = np.zeros(self.n_decoders)
        r = np.zeros(self.n_decoders) if adapt else None
        x, P = s.x0, s.P0
        scale = np.ones(self.n_decoders)
        # Without adaptation the covariance recursion does not depend on the data: once P has
        # converged for a decoder set, its gain is reused (the steady-state fast path).
        frozen: tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray] | None = None
        last: tuple[tuple[int, int], np.ndarray] | None = None
        A, a = self._A, self._a
        for t in range(n):
            if start[t]:
                x, P = s.x0.copy(), s.P0.copy()
                scale[:] = 1.0
                frozen = last = None
            key = (int(masks[t]), int(whites[t]))
            zp = Zc[t - 1] if t else Zc[t]
            if not key[0]:
                x, P = self._predict(x, P)
                frozen = last = None
                out[t] = x[:self.d]
                continue
            if frozen is not None and frozen[0] == key:
                _, K, HPH, P = frozen
                g = self._group(*key)
                x = A @ x + a
                nu = self._pseudo(g, Zc[t], zp) - g.H @ x - g.c
                x = x + K @ nu
            else:
                frozen = None
                x, P_prior = self._predict(x, P)
                g = self._group(*key)
                HPH = g.H @ P_prior @ g.H.T
                x, P, _, K_new, nu = self._fuse(x, P_prior, Zc[t], zp, key, scale, r)
                if K_new is None:
                    nu = None
                if not adapt and K_new is not None:
                    if last is not None and last[0] == key and \
                            np.max(np.abs(P - last[1])) <= 1e-13 * np.max(np.abs(P)):
                        frozen = (key, K_new, HPH, P)
                    last = (key, P)
            if adapt and nu is not None and r is not None:
                for i in g.members:
                    self._commit(i, r[i], scale)
            elif collect and nu is not None:
                rr = np.zeros(self.n_decoders)
                Qg = g.Q0  # no adaptation: nominal noise
                self._stats(g, nu, HPH + Qg, rr)
                r_sum[list(g.members)] += rr[list(g.members)]
                r_n[list(g.members)] += 1
            out[t] = x[:self.d]
        return out, r_sum, r_n

    def filter(self, Z: np.ndarray, mask: np.ndarray | None = None,
               segments: np.ndarray | None = None) -> np.ndarray:
        """Offline fusion of a whole sequence (independent of the live state).

        Parameters
        ----------
        Z : float (n, m)
            Stacked decoder outputs per frame; a decoder whose rows are non-finite in a frame
            is left out of that frame.
        mask : bool (n, n_decoders), optional
            False = decoder absent in that frame.
        segments : int (n,), optional
            Trial ids: the filter restarts from ``x0, P0`` (and nominal noise) at each trial.

        Returns
        -------
        float64 (n, d)
            Posterior mean of the kinematics after each frame.
        """
        return self._offline(Z, mask, segments, self.adapt_noise)[0]

    def innovation_levels(self, Z: np.ndarray, mask: np.ndarray | None = None,
                          segments: np.ndarray | None = None) -> np.ndarray:
        """Mean normalised innovation squared ``r_i`` per decoder over a sequence (``λ = 1``).

        This is the calibration ``κ_i`` of the noise adaptation (1 would mean the model
        describes the innovations exactly).
        """
        _, r_sum, r_n = self._offline(Z, mask, segments, adapt=False, collect=True)
        return np.where(r_n > 0, r_sum / np.maximum(r_n, 1), 1.0)

    # ------------------------------------------------------------------ live
    def reset(self, t0: float | None = None) -> None:
        """Forget everything live: state back to ``x0, P0``, nominal noise, no history.

        Parameters
        ----------
        t0 : float, optional
            Time of frame 0, s. Default: the source time of the first measurement (or the
            first :meth:`predict_to` / :meth:`estimate` time).
        """
        self._t0: float | None = None if t0 is None else float(t0)
        self._head = -1
        self._floor = 0
        self._base_x = self.model.ssm.x0.copy()
        self._base_P = self.model.ssm.P0.copy()
        self._present[:] = False
        self.noise_scale[:] = 1.0
        self._pending_step[:] = -1
        self._pending_valid[:] = False
        self._last_t = np.full(self.n_decoders, -np.inf)
        self._bad = np.zeros(self.n_decoders, dtype=bool)
        self._was_active = np.zeros(self.n_decoders, dtype=bool)

    def frame_of(self, t: float) -> int:
        """Frame index of time ``t`` (s) on the filter's grid (sets the origin if unset)."""
        if self._t0 is None:
            self._t0 = float(t)
        return int(math.floor((float(t) - self._t0) / self.dt_s + 0.5))

    def _posterior(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Posterior after frame ``k``; ``k = floor - 1`` is the base the ring starts from."""
        if k == self._floor - 1:
            return self._base_x, self._base_P
        j = k % self.history
        return self._post_x[j], self._post_P[j]

    def _oldest_in_ring(self) -> int:
        return max(self._floor, self._head - self.history + 1)

    def _advance(self, k: int) -> None:
        """Move the head to frame ``k`` with predict-only frames (no-op if ``k <= head``)."""
        if k <= self._head:
            return
        if k - self._head > self.reset_after_frames:
            # first frame far from the origin, or a long gap: restart from the initial state
            if self._head >= 0:
                self.n_resets += 1
                logger.info("fusion: %d-frame gap; restarting from the initial state", k - self._head)
            self._floor = k
            self._base_x[:] = self.model.ssm.x0
            self._base_P[:] = self.model.ssm.P0
            x, P = self._base_x, self._base_P
        else:
            x, P = self._posterior(self._head)
            first_kept = k - self.history + 1
            for j in range(self._head + 1, first_kept):  # frames that fall out of the ring anyway
                x, P = self._predict(x, P)
                if j == first_kept - 1:
                    self._floor = first_kept
                    self._base_x[:] = x
                    self._base_P[:] = P
        for j in range(max(self._head + 1, self._floor, k - self.history + 1), k + 1):
            x, P = self._predict(x, P)
            s = j % self.history
            self._post_x[s] = x
            self._post_P[s] = P
            self._present[s] = False
        self._head = k

    def _refilter(self, k_from: int) -> None:
        x, P = self._posterior(k_from - 1)
        H = self.history
        for j in range(k_from, self._head + 1):
            s = j % H
            x, P = self._predict(x, P)
            pres = self._present[s]
            if pres.any():
                has_prev = j - 1 >= self._oldest_in_ring()
                prev = self._present[(j - 1) % H] if has_prev else self._no_prev
                r = self._r if self.adapt_noise else None
                x, P, g, _, nu = self._fuse(x, P, self._z[s], self._z[(j - 1) % H], self._key(pres, prev),
                                            self.noise_scale, r)
                if g is not None and r is not None and nu is not None:
                    for i in g.members:
                        if self._pending_step[i] == j:
                            self._pending_r[i] = r[i]
                            self._pending_valid[i] = True
            self._post_x[s] = x
            self._post_P[s] = P

    def update(self, decoder: int, z: np.ndarray, t_source: float, *, healthy: bool = True) -> bool:
        """Fuse one decoder output at its source time.

        Parameters
        ----------
        decoder : int
            Index of the decoder (block) in the model.
        z : float (k_i,)
            Its output.
        t_source : float
            Time of the newest input sample the output depends on, s.
        healthy : bool
            False when the decoder reports a failure (e.g. a held value): the value is not
            fused and the decoder is inactive until its next healthy output.

        Returns
        -------
        bool
            True when the measurement was fused.
        """
        i = int(decoder)
        if not 0 <= i < self.n_decoders:
            raise StageError(f"decoder index {decoder} is out of range (model has {self.n_decoders})",
                             "use the block index of FusionModel.decoder_names")
        b = self._blocks[i]
        zv = np.asarray(z, dtype=np.float64).reshape(-1)
        if zv.size != b.size:
            raise StageError(f"decoder {self.model.decoder_names[i]!r} output has {zv.size} values, "
                             f"the fusion model expects {b.size}", "feed the decoder the model was fitted on")
        if not healthy or not (np.isfinite(zv).all() and math.isfinite(t_source)):
            key = "unhealthy" if not healthy else "nonfinite"
            self.counts[key][i] += 1
            if not self._bad[i]:
                logger.warning("fusion: decoder %r excluded (%s output); further ones counted",
                               self.model.decoder_names[i], key)
            self._bad[i] = True
            return False
        k = self.frame_of(t_source)
        if k > self._head:
            self._advance(k)
        elif k < max(self._floor, self._head - self.history + 2):
            self.counts["too_old"][i] += 1
            return False
        if self._bad[i]:
            logger.info("fusion: decoder %r is back", self.model.decoder_names[i])
            self._bad[i] = False
        # adaptation bookkeeping: commit this decoder's statistic of an earlier frame
        if self.adapt_noise and self._pending_valid[i] and self._pending_step[i] < k:
            self._commit(i, self._pending_r[i], self.noise_scale)
            self._pending_valid[i] = False
        if self._pending_step[i] <= k:
            self._pending_step[i] = k
        s = k % self.history
        if self._present[s, i]:
            self.counts["replaced"][i] += 1
        self._z[s, b] = zv
        self._present[s, i] = True
        self._refilter(k)
        self.counts["fused"][i] += 1
        self._last_t[i] = max(self._last_t[i], float(t_source))
        return True

    def estimate(self, t: float) -> FusionEstimate:
        """The fused estimate at time ``t`` (s); predicts from the newest frame if ``t`` is later.

        Does not change the filter. Always finite.
        """
        if not math.isfinite(t):
            raise StageError(f"estimate got t={t!r}", "pass a finite time in s")
        s = self.model.ssm
        ahead = 0
        if self._head < 0:
            x, P = s.x0, s.P0
        else:
            k = self.frame_of(t)
            if k <= self._head:
                x, P = self._posterior(max(k, self._oldest_in_ring()))
            else:
                ahead = k - self._head
                if ahead > self.reset_after_frames:
                    x, P = s.x0, s.P0
                else:
                    x, P = self._posterior(self._head)
                    for _ in range(ahead):
                        x, P = self._predict(x, P)
        if not math.isfinite(float(x.sum()) + float(P.sum())):  # defensive: never publish NaN
            logger.error("fusion state became non-finite; restarting from the initial state")
            self.reset(self._t0)
            x, P = s.x0, s.P0
        active = (~self._bad) & (float(t) - self._last_t <= self.stale_after_s)
        self._log_activity(active)
        n_active = int(active.sum())
        degraded = n_active < self.n_decoders
        stale = n_active == 0
        flags = (Flags.DEGRADED if degraded else Flags.OK) | (Flags.STALE if stale else Flags.OK)
        d = self.d
        return FusionEstimate(t=float(t), x=np.array(x[:d], copy=True),
                              std=np.sqrt(np.maximum(np.diag(P)[:d], 0.0)),
                              active=tuple(bool(a) for a in active), predicted_frames=int(ahead),
                              degraded=degraded, stale=stale, flags=int(flags))

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the newest frame's full filter state ``s`` (D,) and covariance ``P`` (D, D)."""
        if self._head < 0:
            return self.model.ssm.x0.copy(), self.model.ssm.P0.copy()
        x, P = self._posterior(self._head)
        return x.copy(), P.copy()

    def _log_activity(self, active: np.ndarray) -> None:
        changed = active != self._was_active
        if changed.any():
            for i in np.flatnonzero(changed & self._was_active):
                logger.warning("fusion: decoder %r inactive (stale or unhealthy)",
                               self.model.decoder_names[i])
            self._was_active[:] = active

    def status(self) -> dict[str, Any]:
        """Per-decoder counters, noise scales and health (for telemetry; not per tick)."""
        return {
            "head_frame": self._head,
            "resets": self.n_resets,
            "jitter": self.n_jitter,
            "refused": self.n_refused,
            "decoders": [
                {"name": name, "noise_scale": float(self.noise_scale[i]), "bad": bool(self._bad[i]),
                 "last_t": float(self._last_t[i]),
                 **{k: int(v[i]) for k, v in self.counts.items()}}
                for i, name in enumerate(self.model.decoder_names)
            ],
        }
