r"""Input–output (recruitment) curves: MEP size against stimulus intensity, per muscle.

The curve is the Boltzmann sigmoid commonly fitted to TMS recruitment data (e.g. Devanne et
al. 1997), fitted by least squares to every pulse's peak to peak (not to means, so each pulse
weighs the same):

.. math::

    \mathrm{MEP}(I) = \frac{P}{1 + \exp\big((I_{50} - I)/k\big)}

with plateau ``P`` (µV), midpoint ``I_50`` and width ``k`` (intensity units). Reported with
it: the **threshold**, the intensity where the curve reaches the response threshold
(50 µV, as for the resting motor threshold: ``I_50 - k ln(P / 50 - 1)``), the **slope**,
the steepest rise ``P / (4k)`` (µV per intensity unit, at ``I_50``), R² over the pulses and a
leave-one-intensity-out R² (each intensity predicted by a curve fitted without it: how well
the curve generalises between the intensities that were measured). Because a curve's
threshold or plateau may lie outside the tested intensities, the fit also says whether they
do (``threshold_in_range``; ``plateau_in_range``: ``I_50 + 2k`` is within the tested range, the
curve is at 88 % of its plateau there) and gives the **empirical threshold**: the lowest
tested intensity whose median MEP reaches the response threshold.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import curve_fit

from rtdecode.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["RecruitmentFit", "boltzmann", "fit_recruitment"]


def boltzmann(intensity: np.ndarray, plateau: float, i50: float, k: float) -> np.ndarray:
    """The Boltzmann recruitment curve (µV) at intensities (any shape)."""
    z = np.clip((i50 - np.asarray(intensity, dtype=np.float64)) / k, -50.0, 50.0)
    return plateau / (1.0 + np.exp(z))


@dataclass(frozen=True)
class RecruitmentFit:
    """A fitted recruitment curve (see the module docstring).

    Attributes
    ----------
    plateau_uv, i50, k : float
        Curve parameters (µV, intensity units, intensity units).
    threshold : float
        Intensity where the curve reaches ``response_uv`` (NaN if its plateau does not).
    slope_uv_per_unit : float
        Steepest slope ``P / (4k)``.
    r2 : float
        R² of the fit over the pulses.
    r2_loio : float
        Leave-one-intensity-out R² (NaN with fewer than 4 intensities).
    n_pulses, n_intensities : int
    empirical_threshold : float
        Lowest tested intensity with a median MEP >= ``response_uv`` (NaN if none).
    threshold_in_range, plateau_in_range : bool
        Whether the curve's threshold / near-plateau (``I_50 + 2k``) lie within the tested
        intensities (else they are extrapolated).
    unit : str
        Intensity unit (``"%MSO"``, ``"%RMT"``).
    """

    plateau_uv: float
    i50: float
    k: float
    threshold: float
    slope_uv_per_unit: float
    r2: float
    r2_loio: float
    n_pulses: int
    n_intensities: int
    empirical_threshold: float
    threshold_in_range: bool
    plateau_in_range: bool
    unit: str

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain dict (JSON)."""
        return asdict(self)


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    ss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - yhat) ** 2).sum()) / ss if ss > 0 else math.nan


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    levels = np.unique(x)
    med = np.array([np.median(y[x == v]) for v in levels])
    top = max(float(med.max()), 1.0)
    half = levels[np.argmax(med >= top / 2)]
    span = max(float(levels.max() - levels.min()), 1.0)
    p0 = [top * 1.1, float(half), span / 8]
    bounds = ([1e-3, levels.min() - span, span / 500], [20 * top, levels.max() + span, 2 * span])
    popt, _ = curve_fit(boltzmann, x, y, p0=p0, bounds=bounds, maxfev=20000)
    return popt


def fit_recruitment(intensity: np.ndarray, mep_uv: np.ndarray, *, unit: str = "%MSO",
                    response_uv: float = 50.0) -> RecruitmentFit:
    """Fit a Boltzmann curve to single-pulse MEPs.

    Parameters
    ----------
    intensity : float (n,)
        Intensity of each pulse.
    mep_uv : float (n,)
        Its peak to peak, µV.
    unit : str
        Intensity unit, for the report.
    response_uv : float
        MEP size that defines the threshold, µV.

    Raises
    ------
    DataError
        Fewer than 3 intensities, mismatched or non-finite inputs, or a fit that fails.
    """
    x = np.asarray(intensity, dtype=np.float64).reshape(-1)
    y = np.asarray(mep_uv, dtype=np.float64).reshape(-1)
    if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError(f"recruitment data: {x.size} intensities for {y.size} MEPs (or non-finite)",
                        "pass one finite intensity and one finite MEP per pulse")
    levels = np.unique(x)
    if levels.size < 3:
        raise DataError(f"recruitment curve from {levels.size} intensities",
                        "measure at least 3 intensities (5 or more for a stable fit)")
    try:
        P, i50, k = _fit(x, y)
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"the recruitment curve does not fit: {exc}",
                        "check the MEPs (units, pre-activated pulses) and the intensities") from None
    thr = i50 - k * math.log(P / response_uv - 1.0) if P > response_uv else math.nan
    loio = np.full(y.shape, np.nan)
    if levels.size >= 4:
        for v in levels:
            out = x == v
            try:
                loio[out] = boltzmann(x[out], *_fit(x[~out], y[~out]))
            except (RuntimeError, ValueError):
                pass
    med = np.array([np.median(y[x == v]) for v in levels])
    emp = float(levels[np.argmax(med >= response_uv)]) if (med >= response_uv).any() else math.nan
    lo, hi = float(levels.min()), float(levels.max())
    return RecruitmentFit(float(P), float(i50), float(k), float(thr), float(P / (4 * k)),
                          _r2(y, boltzmann(x, P, i50, k)),
                          _r2(y, loio) if np.isfinite(loio).all() else math.nan,
                          int(y.size), int(levels.size), emp, bool(lo <= thr <= hi),
                          bool(i50 + 2 * k <= hi), unit)
