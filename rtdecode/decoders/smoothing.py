"""Causal smoothing of a classifier's per-frame class probabilities (seed 004, live use).

Two methods over the last ``window`` frames (including the current one):

* ``average`` — mean of the probability vectors (a causal boxcar FIR);
* ``majority`` — one-hot vote of each frame's arg-max, returned as vote fractions.

Both keep their history in a preallocated ring buffer with a write index, so any chunking
gives the same output as one offline pass, and both declare their delay
(``(window - 1) / 2`` frames: the group delay of a causal boxcar).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rtdecode.errors import ConfigError

Method = Literal["average", "majority"]


class ProbabilitySmoother:
    """Causal majority vote / probability average over a window of frames.

    Parameters
    ----------
    n_classes : int
        K, the number of classes.
    window : int
        Frames in the window (1 = no smoothing).
    method : {"average", "majority"}

    Notes
    -----
    Before ``window`` frames have been seen, the window is the frames seen so far.
    """

    def __init__(self, n_classes: int, window: int, method: Method = "average") -> None:
        if window < 1:
            raise ConfigError(f"smoothing window must be >= 1 frame, got {window}",
                              "use a window_s of at least one model frame")
        if method not in ("average", "majority"):
            raise ConfigError(f"unknown smoothing method {method!r}", "use 'average' or 'majority'")
        self.n_classes = int(n_classes)
        self.window = int(window)
        self.method = method
        self._ring = np.zeros((self.window, self.n_classes), dtype=np.float64)
        self._sum = np.zeros(self.n_classes, dtype=np.float64)
        self._i = 0
        self._seen = 0

    @property
    def delay_frames(self) -> float:
        """Group delay of the causal window, frames."""
        return (self.window - 1) / 2.0

    def reset(self) -> None:
        """Forget the history."""
        self._ring[:] = 0
        self._sum[:] = 0
        self._i = 0
        self._seen = 0

    def step(self, p: np.ndarray) -> np.ndarray:
        """Smooth new frames.

        Parameters
        ----------
        p : float (m, K)
            Per-frame class probabilities.

        Returns
        -------
        float32 (m, K)
            Smoothed probabilities (average) or vote fractions (majority); rows sum to 1.
        """
        m = p.shape[0]
        out = np.empty((m, self.n_classes), dtype=np.float32)
        if self.method == "majority":
            v = np.zeros((m, self.n_classes))
            v[np.arange(m), np.argmax(p, axis=1)] = 1.0
        else:
            v = np.asarray(p, dtype=np.float64)
        for j in range(m):  # O(K) per frame: subtract the leaving frame, add the new one
            self._sum -= self._ring[self._i]
            self._ring[self._i] = v[j]
            self._sum += v[j]
            self._i = (self._i + 1) % self.window
            self._seen = min(self._seen + 1, self.window)
            out[j] = self._sum / self._seen
        return out


def window_frames(window_s: float, frame_rate_hz: float) -> int:
    """Frames in a window of ``window_s`` seconds (at least 1)."""
    return max(1, int(round(window_s * frame_rate_hz)))
