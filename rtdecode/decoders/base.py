"""The shape every classic (numpy) decoder has: ``fit`` offline, then ``reset`` / ``step`` live.

A decoder maps observation frames (binned spike counts or firing rates, ``(m, C)``) to
kinematics (``(m, K)``). ``step`` keeps whatever state the decoder needs between calls, so
feeding a recording in any chunk sizes gives the same output as one offline pass
(:meth:`StreamingDecoder.predict`, which restarts at each segment / trial boundary).
The same decoders are exported as streaming ONNX graphs by :mod:`rtdecode.export.classic_onnx`.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from rtdecode.errors import ModelError, StageError

__all__ = ["StreamingDecoder", "check_frames", "segment_slices"]


def segment_slices(n: int, segments: np.ndarray | None) -> list[slice]:
    """Contiguous runs of equal segment id (one slice for the whole recording without ids).

    Parameters
    ----------
    n : int
        Frames.
    segments : int (n,), optional
        Segment (trial) id per frame.

    Returns
    -------
    list of slice
    """
    if segments is None:
        return [slice(0, n)]
    seg = np.asarray(segments)
    if seg.shape != (n,):
        raise StageError(f"segments has shape {seg.shape}, expected ({n},)", "give one id per frame")
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    ends = np.r_[starts[1:], n]
    return [slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def check_frames(x: np.ndarray, n_inputs: int, who: str) -> np.ndarray:
    """Validate a chunk of frames and return it as float64 ``(m, n_inputs)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != n_inputs:
        raise StageError(f"{who}: frames have shape {x.shape}, expected (m, {n_inputs})",
                         "feed one row per frame with the channels the decoder was fitted on")
    return x


class StreamingDecoder(abc.ABC):
    """A decoder fitted with numpy that runs causally, chunk by chunk.

    Attributes
    ----------
    n_inputs : int
        Observation channels ``C`` (set by :meth:`fit`).
    n_outputs : int
        Decoded kinematics ``K`` (set by :meth:`fit`).
    kind : str
        Short name of the method (``"kalman"``, ``"population_vector"``, ``"wiener"``).
    """

    kind: str = "decoder"
    n_inputs: int = 0
    n_outputs: int = 0

    @abc.abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None) -> StreamingDecoder:
        """Fit on observations ``x`` (n, C) and kinematics ``y`` (n, K); returns ``self``.

        ``segments`` (n,) are trial ids: nothing is fitted across a trial boundary.
        """

    @abc.abstractmethod
    def reset(self) -> None:
        """Return to the initial state (the state before the first frame)."""

    @abc.abstractmethod
    def step(self, x: np.ndarray) -> np.ndarray:
        """Decode new frames and advance the state.

        Parameters
        ----------
        x : float (m, C)
            New observation frames (m may be 0).

        Returns
        -------
        float64 (m, K)
            One decoded row per frame.
        """

    def predict(self, x: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
        """Offline pass over a whole recording, restarting at each segment.

        The base implementation resets and calls :meth:`step` per segment; subclasses
        override it with an independent offline computation where one exists (so the
        streaming-equals-offline tests compare two implementations).

        Parameters
        ----------
        x : float (n, C)
        segments : int (n,), optional

        Returns
        -------
        float64 (n, K)
        """
        self._require_fitted()
        x = check_frames(x, self.n_inputs, type(self).__name__)
        out = np.empty((x.shape[0], self.n_outputs))
        for sl in segment_slices(x.shape[0], segments):
            out[sl] = self._offline(x[sl])
        self.reset()
        return out

    def _offline(self, x: np.ndarray) -> np.ndarray:
        self.reset()
        return self.step(x)

    def _require_fitted(self) -> None:
        if self.n_outputs == 0:
            raise ModelError(f"{type(self).__name__} is not fitted", "call fit(x, y) first")

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (kind, sizes)."""
        return {"kind": self.kind, "n_inputs": self.n_inputs, "n_outputs": self.n_outputs}
