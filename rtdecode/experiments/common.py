"""Shared pieces of the fusion experiments: metrics, the decoder bank, provenance, output files."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.decoders import KalmanDecoder, PopulationVectorDecoder, StreamingDecoder, WienerDecoder
from rtdecode.metrics import r2_per_column, rms

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_OUT", "DecoderBank", "environment", "mean_se", "r2_per_column", "rms", "write_json"]

#: Default output folder of the experiments (``bench/results/fusion`` in the repository).
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "bench" / "results" / "fusion"


def mean_se(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, standard error of the mean, standard deviation and count of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    return {"mean": float(v.mean()) if n else float("nan"), "se": sd / np.sqrt(n) if n else float("nan"),
            "sd": sd, "n": n}


class DecoderBank:
    """The three classic decoders of seed 002, fitted on the same training set.

    Parameters
    ----------
    wiener_lags : int
        Frames of history of the Wiener filter (4 in the paper).
    pv_lags : int
        Frames the population vector averages (1 = instantaneous, as in the paper).
    velocity_columns : sequence of int, optional
        Columns of the kinematics that are the velocity; the population vector decodes only
        these (default: all columns).
    """

    names = ("kalman", "wiener", "population_vector")

    def __init__(self, *, wiener_lags: int = 4, pv_lags: int = 1,
                 velocity_columns: Sequence[int] | None = None, wiener_ridge: float = 1e-3) -> None:
        self.velocity_columns = None if velocity_columns is None else list(velocity_columns)
        self.decoders: dict[str, StreamingDecoder] = {
            "kalman": KalmanDecoder(),
            "wiener": WienerDecoder(lags=wiener_lags, ridge=wiener_ridge),
            "population_vector": PopulationVectorDecoder(lags=pv_lags),
        }

    def fit(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None) -> DecoderBank:
        """Fit every decoder on counts ``x`` (n, C) and kinematics ``y`` (n, K)."""
        self.decoders["kalman"].fit(x, y, segments)
        self.decoders["wiener"].fit(x, y, segments)
        vcols = self.velocity_columns
        v = y if vcols is None else y[:, vcols]
        self.decoders["population_vector"].fit(x, v, segments)
        return self

    def output_columns(self, name: str, n_kinematics: int) -> list[int]:
        """Kinematics columns decoder ``name`` outputs."""
        if name == "population_vector" and self.velocity_columns is not None:
            return list(self.velocity_columns)
        return list(range(n_kinematics))

    def predict(self, x: np.ndarray, segments: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each decoder's offline output (restarting at each segment)."""
        return {name: dec.predict(x, segments) for name, dec in self.decoders.items()}


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, check=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, Any]:
    """Where and when a result was measured."""
    import scipy

    return {"date": _dt.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "git_commit": _git_commit()}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(data: dict[str, Any], path: Path) -> Path:
    """Write ``data`` as indented JSON (numpy types converted, NaN → null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)
    return path
