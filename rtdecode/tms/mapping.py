"""Stimulation protocols for the virtual subject: the paper's mapping session, or a fixed spot.

Mapping (seed 001, section 2.1): for each intensity (110, 120, 130, 140 % of the resting
motor threshold) one pulse at each point of a 7 × 7 grid over a 7 cm² square centred on the
FDI hotspot, in random order, then ``adaptive`` pulses placed by the responses so far: a
grid point is drawn with probability proportional to its summed normalised MEPs (plus a
floor), and the coil goes there with a Gaussian jitter of half the grid step. The coil stays
tangential, induced current posterior → anterior at 45° (optionally jittered).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rtdecode.errors import ConfigError
from rtdecode.tms.coil import CoilPose3D
from rtdecode.tms.subject import MUSCLES, PA45, Response, VirtualSubject

logger = logging.getLogger(__name__)

__all__ = ["Stimulus", "Trial", "deliver", "fixed_protocol", "mapping_protocol"]


@dataclass(frozen=True)
class Stimulus:
    """Where and how hard to stimulate: sheet coordinates (mm), coil direction, intensity."""

    u_mm: float
    v_mm: float
    direction: np.ndarray
    intensity_rmt: float


@dataclass(frozen=True)
class Trial:
    """A delivered pulse and the subject's response to it.

    Attributes
    ----------
    pulse : int
        Pulse number from 0.
    stimulus : Stimulus
    pose : CoilPose3D
        Coil pose in the head frame (m).
    intensity_mso : float
        Intensity in % of maximum stimulator output.
    response : Response
        MEP peak to peak (µV) and onset latency (ms) per muscle.
    preactivated : bool (M,)
        Muscles with voluntary background activity at the pulse.
    """

    pulse: int
    stimulus: Stimulus
    pose: CoilPose3D
    intensity_mso: float
    response: Response
    preactivated: np.ndarray


def _direction(rng: np.random.Generator, jitter_deg: float) -> np.ndarray:
    a = math.pi / 4 + math.radians(jitter_deg) * rng.standard_normal()
    return np.array([math.cos(a), math.sin(a), 0.0]) if jitter_deg else PA45


def fixed_protocol(u_mm: float, v_mm: float, intensity_rmt: float, n_pulses: int | None = None
                   ) -> Iterator[Stimulus]:
    """Every pulse at one spot and intensity (``n_pulses`` of them, or without end)."""
    k = 0
    while n_pulses is None or k < n_pulses:
        yield Stimulus(u_mm, v_mm, PA45, intensity_rmt)
        k += 1


def mapping_protocol(centre_mm: tuple[float, float], rng: np.random.Generator, *,
                     intensities_rmt: tuple[float, ...] = (110.0, 120.0, 130.0, 140.0),
                     grid: int = 7, area_cm2: float = 7.0, adaptive: int = 126,
                     jitter_deg: float = 0.0) -> Iterator[Stimulus]:
    """The mapping session of seed 001 (see the module docstring).

    The generator is driven with ``send(mep_uv)``: after each yielded stimulus, send the
    MEPs (µV, per muscle) it evoked (or None), which steer the adaptive pulses.
    """
    if grid < 2 or adaptive < 0:
        raise ConfigError(f"mapping grid {grid} x {grid} with {adaptive} adaptive pulses",
                          "use a grid of at least 2 x 2 and adaptive >= 0")
    step = math.sqrt(area_cm2) * 10.0 / (grid - 1)
    offsets = (np.arange(grid) - (grid - 1) / 2) * step
    points = np.array([(centre_mm[0] + a, centre_mm[1] + b) for a in offsets for b in offsets])
    for intensity in intensities_rmt:
        score = np.zeros(len(points))
        peak = np.full(len(MUSCLES), 1e-9)
        seen: list[tuple[int, np.ndarray]] = []
        for i in rng.permutation(len(points)):
            mep = yield Stimulus(float(points[i][0]), float(points[i][1]), _direction(rng, jitter_deg),
                                 intensity)
            if mep is not None:
                seen.append((int(i), np.asarray(mep)))
        for _, mep in seen:
            peak = np.maximum(peak, mep)
        for i, mep in seen:
            score[i] += float((mep / peak).sum())
        for _ in range(adaptive):
            p = score + 0.05 * (score.max() + 1e-9)
            i = int(rng.choice(len(points), p=p / p.sum()))
            u, v = points[i] + rng.normal(0.0, step / 2, 2)
            mep = yield Stimulus(float(u), float(v), _direction(rng, jitter_deg), intensity)
            if mep is not None:
                peak = np.maximum(peak, mep)
                score[i] += float((np.asarray(mep) / peak).sum())


def deliver(subject: VirtualSubject, stimulus: Stimulus, rmt_mso: float, pulse: int,
            rng: np.random.Generator, preactivation_prob: float) -> Trial:
    """One pulse of a protocol on the subject: pose, %MSO, pre-activation and the response."""
    pose = subject.pose_at(stimulus.u_mm, stimulus.v_mm, stimulus.direction)
    mso = min(100.0, rmt_mso * stimulus.intensity_rmt / 100.0)
    pre = np.zeros(len(MUSCLES), bool)
    if rng.random() < preactivation_prob:  # voluntary contraction of one muscle group
        group = int(rng.integers(0, subject.weights.shape[1]))
        pre = subject.weights[:, group] >= 0.99
    response = subject.respond(pose, mso, rng, facilitation=np.where(pre, 1.6, 1.0))
    return Trial(pulse, stimulus, pose, mso, response, pre)
