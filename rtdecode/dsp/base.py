"""The shape every causal preprocessing stage has.

A stage is a pure step under a thin stateful wrapper: ``step(x, t) -> (y, t_out)``
keeps whatever state it needs between calls, so feeding a recording in any chunk
sizes gives the same output as one call over the whole recording (float32
tolerance). Stages are built from JSON-able specs (see :mod:`rtdecode.dsp.specs`)
so a model file can carry the exact chain it was trained with.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from rtdecode.errors import StageError


class Stage(abc.ABC):
    """A causal, stateful preprocessing stage.

    Attributes
    ----------
    rate_in_hz, rate_out_hz : float
        Sample rate of the input and of the output, Hz.
    n_in, n_out : int
        Channel count of the input and of the output.
    delay_s : float
        Declared group delay of the stage (s) at the frequencies of interest
        (0 for memoryless stages).
    memory_s : float
        How long one input sample keeps affecting the output, s: a FIR's length, an IIR
        filter's settling time to 1e-3 of an impulse (0 for memoryless stages). The
        pipeline flags outputs this long after repaired input.
    spec : pydantic model or None
        The spec the stage was built from (see :mod:`rtdecode.dsp.specs`), so a chain
        can be written back to JSON; None for a stage built by hand.
    dtype : numpy dtype or None
        What the stage computes in: its input arrives in this dtype (float64 unless its
        spec's ``precision`` says float32); None: either float dtype, the input's.
    """

    rate_in_hz: float
    rate_out_hz: float
    n_in: int
    n_out: int
    delay_s: float = 0.0
    memory_s: float = 0.0
    spec: Any = None
    dtype: Any = np.dtype(np.float64)

    def step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Process new samples (validated; a :class:`~rtdecode.dsp.chain.Chain` validates once
        and calls :meth:`_step` on each stage).

        Parameters
        ----------
        x : float (n, n_in)
            New input samples (n may be 0).
        t : float64 (n,)
            Time of each input sample, s.

        Returns
        -------
        y : float64 (m, n_out)
            Output samples produced by this call (m = n unless the stage changes rate).
        t_out : float64 (m,)
            Time of each output sample: the time of the newest input sample it depends on.

        Raises
        ------
        StageError
            If ``x`` is not (n, n_in) or ``t`` not one time per row.
        """
        x, t = check_chunk(x, t, self.n_in, type(self).__name__, self.input_dtype)
        if x.shape[0] == 0:
            return empty_output(self.n_out)
        return self._step(x, t)

    @property
    def input_dtype(self) -> np.dtype:
        """The dtype a chunk is validated into for this stage: :attr:`dtype`, float64 for None."""
        return np.dtype(np.float64 if self.dtype is None else self.dtype)

    @abc.abstractmethod
    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` on input already checked: (n, n_in) with n >= 1 in :attr:`dtype`
        (float64 unless the stage says otherwise), times (n,)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Return to the initial (zero) state, as at the start of a recording."""


def check_chunk(
    x: np.ndarray, t: np.ndarray, n_in: int, where: str, dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a chunk and return x in ``dtype`` and t as float64 (no copy when already so).

    Parameters
    ----------
    x : float (n, n_in)
        Input samples.
    t : float (n,)
        Sample times, s.
    n_in : int
        Expected channel count.
    where : str
        Name of the stage, used in the error message.
    dtype : numpy dtype
        The samples' dtype on return (float64 unless a stage computes in float32).

    Returns
    -------
    x : dtype (n, n_in)
    t : float64 (n,)

    Raises
    ------
    StageError
        If ``x`` is not 2-D with ``n_in`` columns or ``t`` does not have one time per row.
    """
    x = np.asarray(x, dtype=dtype)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise StageError(
            f"{where}: got samples of shape {x.shape}, expected (n, {n_in}) (n samples, "
            f"{n_in} channels)",
            "pass a 2-D array with one row per sample and one column per channel; check "
            "that the stream's channel count matches the chain's",
        )
    if t.shape != (x.shape[0],):
        raise StageError(
            f"{where}: got times of shape {t.shape} for {x.shape[0]} samples, expected "
            f"({x.shape[0]},)",
            "pass one time stamp (s) per sample",
        )
    return x, t


def empty_output(n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty ``(y, t_out)`` of the right shapes: float64 (0, n_out) and float64 (0,)."""
    return np.empty((0, n_out), dtype=np.float64), np.empty(0, dtype=np.float64)


def check_io(rate_hz: float, n_in: int, where: str) -> tuple[float, int]:
    """Validate a stage's input rate (Hz, finite, > 0) and channel count (int >= 1).

    Raises
    ------
    StageError
        If either is out of range.
    """
    try:
        rate = float(rate_hz)
    except (TypeError, ValueError):
        rate = float("nan")
    if not np.isfinite(rate) or rate <= 0.0:
        raise StageError(
            f"{where}: input sample rate must be a finite number > 0 Hz, got {rate_hz!r}",
            "pass the stream's nominal sample rate in Hz",
        )
    if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)) or n_in < 1:
        raise StageError(
            f"{where}: input channel count must be an integer >= 1, got {n_in!r}",
            "pass the stream's channel count",
        )
    return rate, int(n_in)


class MemorylessStage(Stage):
    """A stage without state whose output has one row per input row.

    Subclasses set the attributes in ``__init__`` and implement :meth:`apply`.
    """

    @abc.abstractmethod
    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map input samples float64 (n, n_in), n >= 1, to output samples float64 (n, n_out)."""

    def _step(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the stage to new samples; see :meth:`Stage.step`."""
        return self.apply(x), t

    def reset(self) -> None:
        """Nothing to reset: the stage keeps no state."""
