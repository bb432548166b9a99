"""A virtual TMS subject: coil pose and intensity → E-field on a motor-cortex sheet → 15 MEPs.

Model (all randomness from ``seed``; see docs/tms.md)
-----------------------------------------------------
* Head: a sphere (scalp radius ``SCALP_M``); the coil's winding plane lies ``COIL_GAP_M``
  above the scalp, tangential to it. The motor cortex is a sheet of points on the sphere of
  radius ``CORTEX_M`` around the pole (+z), ``SHEET_MM`` wide; at 100 %MSO the coil current
  changes at ``DIDT_MAX`` A/s. E-field: :func:`rtdecode.tms.efield.sphere_efield`.
* Neural response at each sheet point: a sigmoid of the effective field, the field's
  component along the point's preferred direction (the posterior–anterior axis 45° from the
  midline) plus a third of the rest: ``f = 1 / (1 + exp(-(E_eff - E50) / E_SLOPE))``.
* Synergies: ``K`` cortical modules, Gaussian patches on the sheet. Each muscle's
  representation is a non-negative mix of modules plus a small patch of its own; its drive
  is the recruited fraction ``d = Σ w f / Σ w`` of that representation (0..1), so muscles of
  one synergy co-vary.
* Recruitment: ``MEP = MEPmax · g(d')`` with ``g`` a sigmoid of the drive rescaled to
  ``g(0) = 0``; trial-to-trial variability: the drive is scaled by a shared excitability
  factor ``1 + 0.08 z`` per pulse and each MEP by ``exp(0.3 z_m)`` (log-normal;
  ``EXCITABILITY_SD``, ``MEP_LOG_SD``).
* Onset latency per muscle: 19–24 ms (distal muscles later), jitter 0.4 ms per pulse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rtdecode.errors import ConfigError
from rtdecode.tms.coil import CoilPose3D, Figure8Coil
from rtdecode.tms.efield import sphere_efield

logger = logging.getLogger(__name__)

__all__ = ["MUSCLES", "SYNERGIES", "VirtualSubject"]

#: The 15 hand and arm muscles, in channel order.
MUSCLES = ("FDI", "APB", "ADM", "FPB", "EDC", "EIP", "ECU", "FDS", "FCR", "FCU", "ECR", "PT",
           "BIC", "TRI", "DEL")
#: Synergy module of each muscle (its main one) and the modules' names.
SYNERGIES = ("intrinsic hand", "finger extension", "flexion", "wrist / forearm", "proximal arm")
_MAIN_MODULE = (0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4)
#: Module centres on the sheet, mm (lateral u, anterior v) from the hand knob.
_MODULE_MM = np.array([[0.0, 0.0], [5.0, 4.0], [3.0, -5.0], [10.0, 0.0], [19.0, 3.0]])
_LATENCY_MS = np.array([23.5, 23.0, 24.0, 23.5, 21.0, 21.5, 21.0, 21.5, 20.5, 21.0, 20.0, 20.0,
                        19.0, 19.0, 19.5])
_MEP_MAX_UV = np.array([3000, 2200, 1800, 1500, 1400, 1200, 1000, 1300, 1100, 1000, 1100, 800,
                        700, 600, 500], dtype=np.float64)

SCALP_M = 0.085
CORTEX_M = 0.070
COIL_GAP_M = 0.006
SHEET_MM = 48.0
SHEET_STEP_MM = 2.0
DIDT_MAX = 1.2e8  # A/s at 100 %MSO
#: Trial-to-trial variability: sd of the shared excitability factor on the drive, and of each
#: MEP's log (the log-normal factor is scaled to mean 1).
EXCITABILITY_SD = 0.08
MEP_LOG_SD = 0.3
E50_V_M = 100.0
E_SLOPE_V_M = 12.0
#: The coil orientation the subject was mapped with: induced current posterior → anterior,
#: 45° from the midline.
PA45 = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0])


def _sphere_point(u_mm: np.ndarray, v_mm: np.ndarray, radius_m: float) -> np.ndarray:
    """Points on a sphere from tangent-plane coordinates at the pole (azimuthal equidistant)."""
    u, v = np.asarray(u_mm) / 1e3, np.asarray(v_mm) / 1e3
    s = np.hypot(u, v)
    theta = s / radius_m
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(s > 0, np.sin(theta) / np.where(s > 0, s, 1.0), 1.0 / radius_m)
    return radius_m * np.stack([u * k, v * k, np.cos(theta)], axis=-1)


@dataclass(frozen=True)
class Response:
    """One pulse's outcome: MEP peak to peak (µV) and onset latency (ms) per muscle, drives."""

    mep_uv: np.ndarray
    latency_ms: np.ndarray
    drive: np.ndarray


class VirtualSubject:
    """The virtual subject (see the module docstring).

    Parameters
    ----------
    seed : int
        Subject seed: module positions, muscle weights, thresholds, MEP sizes.
    coil : Figure8Coil, optional
        The coil (default: the 70-mm figure-of-eight model).
    """

    def __init__(self, seed: int = 0, coil: Figure8Coil | None = None) -> None:
        rng = np.random.default_rng([seed, 14])
        self.seed = seed
        self.coil = coil or Figure8Coil()
        g = np.arange(-SHEET_MM / 2, SHEET_MM / 2 + 1e-9, SHEET_STEP_MM)
        uu, vv = np.meshgrid(g, g, indexing="ij")
        self.sheet_mm = np.column_stack([uu.ravel(), vv.ravel()])
        self.sheet = _sphere_point(uu.ravel(), vv.ravel(), CORTEX_M)
        normal = self.sheet / np.linalg.norm(self.sheet, axis=1, keepdims=True)
        pref = PA45 - (normal @ PA45)[:, None] * normal
        self.preferred = pref / np.linalg.norm(pref, axis=1, keepdims=True)
        centres = _MODULE_MM + rng.normal(0.0, 1.5, _MODULE_MM.shape)
        width = rng.uniform(4.0, 6.0, len(centres))
        self.modules = np.exp(-0.5 * (((self.sheet_mm[:, None, :] - centres[None]) ** 2).sum(-1)
                                      / width[None] ** 2))  # (P, K)
        n = len(MUSCLES)
        W = rng.uniform(0.0, 0.35, (n, len(centres))) * (rng.random((n, len(centres))) < 0.5)
        W[np.arange(n), _MAIN_MODULE] = 1.0
        self.weights = W  # (M, K): synergy structure
        own = centres[list(_MAIN_MODULE)] + rng.normal(0.0, 3.0, (n, 2))
        self.own = 0.5 * np.exp(-0.5 * ((self.sheet_mm[:, None, :] - own[None]) ** 2).sum(-1) / 9.0)
        rep = self.modules @ W.T + self.own  # (P, M)
        self.representation = rep / rep.sum(axis=0, keepdims=True)
        self.d50 = rng.uniform(0.22, 0.40, n)
        self.d_slope = rng.uniform(0.05, 0.08, n)
        self.mep_max_uv = _MEP_MAX_UV * rng.uniform(0.7, 1.3, n)
        self.latency_ms = _LATENCY_MS + rng.normal(0.0, 0.4, n)
        self._g0 = 1.0 / (1.0 + np.exp(self.d50 / self.d_slope))
        self._hotspots: dict[str, tuple[float, float]] = {}

    # -- physics ---------------------------------------------------------
    def pose_at(self, u_mm: float, v_mm: float, direction: np.ndarray = PA45) -> CoilPose3D:
        """A coil pose tangential to the scalp, radially above sheet coordinates (u, v) mm."""
        n = _sphere_point(np.array([u_mm]), np.array([v_mm]), CORTEX_M)[0] / CORTEX_M
        return CoilPose3D.make(n * (SCALP_M + COIL_GAP_M), n, direction)

    def efield(self, pose: CoilPose3D, intensity_mso: float, points: np.ndarray | None = None
               ) -> np.ndarray:
        """E-field (V/m, (P, 3)) at the sheet (or ``points``, m) for a pose and %MSO intensity."""
        if not 0.0 <= intensity_mso <= 100.0:
            raise ConfigError(f"intensity {intensity_mso} %MSO outside 0..100",
                              "give the stimulator output in % of its maximum")
        pos, mom = self.coil.dipoles(pose)
        pts = self.sheet if points is None else points
        return sphere_efield(pts, pos, mom, DIDT_MAX * intensity_mso / 100.0)

    def firing(self, E: np.ndarray) -> np.ndarray:
        """Neural response (0..1) at each sheet point for the field E (P, 3), V/m."""
        along = np.abs(np.einsum("pc,pc->p", E, self.preferred))
        e_eff = along + (np.linalg.norm(E, axis=1) - along) / 3.0
        return 1.0 / (1.0 + np.exp(-(e_eff - E50_V_M) / E_SLOPE_V_M))

    def drive(self, pose: CoilPose3D, intensity_mso: float) -> np.ndarray:
        """Recruited fraction of each muscle's representation (M,), 0..1."""
        return self.firing(self.efield(pose, intensity_mso)) @ self.representation

    def expected_mep(self, drive: np.ndarray) -> np.ndarray:
        """Noise-free MEP peak to peak (µV) for drives (..., M)."""
        g = 1.0 / (1.0 + np.exp(-(drive - self.d50) / self.d_slope))
        return self.mep_max_uv * np.clip((g - self._g0) / (1.0 - self._g0), 0.0, None)

    def respond(self, pose: CoilPose3D, intensity_mso: float, rng: np.random.Generator,
                facilitation: np.ndarray | None = None) -> Response:
        """One pulse: MEPs with trial-to-trial variability (and pre-activation facilitation)."""
        d = self.drive(pose, intensity_mso)
        d_trial = d * (1.0 + EXCITABILITY_SD * rng.standard_normal())
        mep = self.expected_mep(d_trial) * np.exp(MEP_LOG_SD * rng.standard_normal(len(MUSCLES))
                                                  - MEP_LOG_SD ** 2 / 2)
        if facilitation is not None:
            mep = mep * facilitation
        lat = self.latency_ms + 0.4 * rng.standard_normal(len(MUSCLES))
        return Response(mep, lat, d)

    def mean_mep(self, pose: CoilPose3D, intensity_mso: float, nodes: int = 40) -> np.ndarray:
        """The mean MEP (µV, (M,)) of a pulse over the trial-to-trial variability of
        :meth:`respond` (no facilitation): the excitability factor integrated out by
        Gauss–Hermite quadrature (the log-normal factor has mean 1) — the best any predictor of
        this subject's MEPs can do in mean squared error."""
        z, w = np.polynomial.hermite_e.hermegauss(nodes)
        d = self.drive(pose, intensity_mso)
        return (w / w.sum()) @ self.expected_mep(d[None, :] * (1.0 + EXCITABILITY_SD * z[:, None]))

    # -- calibration -----------------------------------------------------
    def hotspot(self, muscle: str = "FDI") -> tuple[float, float]:
        """Sheet coordinates (mm) of the coil position with the largest drive to ``muscle``.

        A 6-mm grid search over ±12 mm, refined on a 2-mm grid around the best point (cached).
        """
        if muscle not in self._hotspots:
            m = MUSCLES.index(muscle)
            best = (0.0, 0.0)
            for step, reach in ((6.0, 12.0), (2.0, 4.0)):
                offsets = np.arange(-reach, reach + 1e-9, step)
                cands = [(best[0] + a, best[1] + b) for a in offsets for b in offsets]
                best = max(cands, key=lambda uv: self.drive(self.pose_at(*uv), 60.0)[m])
            self._hotspots[muscle] = (float(best[0]), float(best[1]))
        return self._hotspots[muscle]

    def resting_motor_threshold(self, muscle: str = "FDI") -> float:
        """Lowest %MSO whose noise-free MEP at the hotspot reaches 50 µV (bisection)."""
        m = MUSCLES.index(muscle)
        pose = self.pose_at(*self.hotspot(muscle))
        lo, hi = 1.0, 100.0
        if self.expected_mep(self.drive(pose, hi))[m] < 50.0:
            raise ConfigError(f"the virtual subject's {muscle} never reaches 50 µV",
                              "use another subject seed")
        while hi - lo > 0.05:
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if self.expected_mep(self.drive(pose, mid))[m] >= 50.0 else (mid, hi)
        return round(hi, 1)
