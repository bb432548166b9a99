"""The classic EMG decoder as a streaming decoder: time-domain features → LDA or ridge.

:func:`~rtdecode.dsp.td.td_features` over a causal window of ``W`` samples, then
one affine map of the features: an :class:`~rtdecode.decoders.lda.LDA` (classification;
outputs class probabilities, the softmax of the discriminants — the Gaussian posterior) or
a ridge regression (continuous targets). The state is the last ``W + 1`` input samples
(zero at reset), so the decoder exports to ONNX with the window as explicit state
(:func:`rtdecode.export.classic_onnx.td_decoder_graph`) and the daemon serves it like any
model. It runs on the filtered input at the input rate; causal filtering stays in the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from rtdecode.decoders.base import StreamingDecoder, check_frames, segment_slices
from rtdecode.decoders.lda import LDA
from rtdecode.decoders.linear import fit_wiener
from rtdecode.dsp.td import HUDGINS, TD_FEATURES, td_features, td_step
from rtdecode.errors import ModelError

logger = logging.getLogger(__name__)

__all__ = ["TDDecoder"]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class TDDecoder(StreamingDecoder):
    """Time-domain features over a causal window, then LDA (classifier) or ridge (regressor).

    Parameters
    ----------
    window : int
        Feature window, samples (≥ 2).
    threshold : float
        ZC / SSC dead zone, units of the input.
    features : sequence of str
        Some of ``mav, wl, zc, ssc, rms`` (default the Hudgins set).
    head : {"lda", "ridge"}
    shrinkage : float
        LDA covariance shrinkage.
    ridge : float
        Ridge penalty relative to the mean diagonal of the feature Gram matrix.
    stride : int
        Fit on every ``stride``-th window (neighbouring windows overlap almost entirely).

    Attributes
    ----------
    W : float64 (K, F·C)
    b : float64 (K,)
        The head as one affine map of the raw features (standardisation folded in).
    classes : int (K,) or None
        Class labels of the outputs (classifier): 0..K-1.
    """

    def __init__(self, window: int, threshold: float = 0.0, features: Sequence[str] = HUDGINS,
                 head: Literal["lda", "ridge"] = "lda", shrinkage: float = 1e-2, ridge: float = 1e-3,
                 stride: int = 1) -> None:
        if int(window) < 2:
            raise ModelError(f"TD window must be ≥ 2 samples, got {window}", "use e.g. 200 ms of samples")
        if head not in ("lda", "ridge"):
            raise ModelError(f"unknown head {head!r}", "use 'lda' (classes) or 'ridge' (continuous)")
        self.window, self.threshold = int(window), float(threshold)
        td_features(np.zeros((2, 1)), self.window, float(threshold), features)  # checks the names
        self.features = tuple(f for f in TD_FEATURES if f in features)
        self.head, self.shrinkage, self.ridge = head, float(shrinkage), float(ridge)
        self.stride = max(1, int(stride))
        self.kind = f"td_{head}"
        self.W = np.zeros((0, 0))
        self.b = np.zeros(0)
        self.classes: np.ndarray | None = None
        self._buf = np.zeros((self.window + 1, 0))

    # -- fitting ----------------------------------------------------------------------------

    def features_of(self, x: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
        """Features of every sample, each segment from the reset state: float64 (n, F·C)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.empty((x.shape[0], len(self.features) * x.shape[1]))
        for sl in segment_slices(x.shape[0], segments):
            out[sl] = td_features(x[sl], self.window, self.threshold, self.features, zero_history=True)
        return out

    def fit(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None,
            keep: np.ndarray | None = None) -> TDDecoder:
        """Fit on filtered input ``x`` (n, C) and labels (n,) or targets (n, K).

        ``segments`` (n,) restart the window (features never span two recordings / trials);
        ``keep`` (n,) bool marks the samples whose windows are fitted on (default all).
        """
        feats = self.features_of(x, segments)
        rows = np.flatnonzero(np.ones(feats.shape[0], bool) if keep is None else keep)
        return self.fit_features(feats, y, rows, n_inputs=int(np.asarray(x).shape[1]))

    def fit_features(self, feats: np.ndarray, y: np.ndarray, rows: np.ndarray, *, n_inputs: int,
                     n_classes: int | None = None) -> TDDecoder:
        """Fit the head on precomputed features (:meth:`features_of`) of the samples ``rows``.

        Parameters
        ----------
        feats : float (n, F·C)
        y : int (n,) labels or float (n, K) targets
        rows : int (m,)
            Samples to fit on (every ``stride``-th is used).
        n_inputs : int
            Input channels C.
        n_classes : int, optional
            LDA: output one probability per class 0..n_classes-1 (classes absent from the fit
            get probability 0); default the largest label seen + 1.
        """
        rows = np.asarray(rows)[::self.stride]
        if rows.size == 0:
            raise ModelError("no samples to fit the TD decoder on", "check the labels and trials")
        self.n_inputs = int(n_inputs)
        if self.head == "lda":
            lda = LDA(self.shrinkage).fit(feats[rows], np.asarray(y).reshape(-1)[rows])
            W, b = lda.linear_map()
            self.classes = np.arange(max(int(n_classes or 0), int(lda.classes_.max()) + 1))
            self.W = np.zeros((self.classes.size, W.shape[1]))
            self.b = np.full(self.classes.size, -1e4)  # a class never seen in the fit: probability 0
            self.W[lda.classes_], self.b[lda.classes_] = W, b
        else:
            yy = np.asarray(y, dtype=np.float64).reshape(feats.shape[0], -1)
            W, b = fit_wiener(feats[rows], yy[rows], 1, ridge=self.ridge)
            self.W, self.b = W[:, :, 0].astype(np.float64), b.astype(np.float64)
        self.n_outputs = int(self.W.shape[0])
        self._buf = np.zeros((self.window + 1, self.n_inputs))
        return self

    def map_features(self, feats: np.ndarray) -> np.ndarray:
        """The head on features (n, F·C): probabilities (LDA) or targets, float64 (n, K)."""
        z = feats @ self.W.T + self.b
        return _softmax(z) if self.head == "lda" else z

    # -- streaming ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero window (the state before the first sample)."""
        self._buf[:] = 0.0

    def step(self, x: np.ndarray) -> np.ndarray:
        """Decode new samples ``x`` (m, C) → float64 (m, K) (probabilities for the LDA head)."""
        self._require_fitted()
        x = check_frames(x, self.n_inputs, type(self).__name__)
        feats, self._buf = td_step(self._buf, x, self.window, self.threshold, self.features)
        return self.map_features(feats)

    def _offline(self, x: np.ndarray) -> np.ndarray:
        self.reset()
        return self.map_features(self.features_of(x))

    def describe(self) -> dict[str, Any]:
        """Kind, sizes, window and features."""
        return {**super().describe(), "window": self.window, "threshold": self.threshold,
                "features": list(self.features), "head": self.head, "stride": self.stride}
