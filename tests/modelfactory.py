"""Real ONNX model files for tests, written with the same export code as the shipped models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtdecode.dsp import build_chain
from rtdecode.export.onnx_graphs import causal_conv_graph, write_model
from rtdecode.runtime.metadata import ModelMetadata, OutputSpec


def linear_model(path: Path, *, rate_hz: float, channels: int, chain: list[dict] | None = None,
                 lags: int = 3, n_out: int = 2, identity_channel: int | None = None,
                 seed: int = 0, classifier: bool = False, weight_scale: float = 1.0) -> Path:
    """Write a streaming causal linear model with random weights.

    With ``identity_channel=k``, output 0 is exactly input channel k at lag 0
    (so an index channel passes through untouched: a proof of no loss / duplication), and the
    other outputs do not read channel k: a sample counter grows with the run, and mixed into a
    small output it makes float32 rounding (which depends on how many frames one ONNX Runtime
    call takes) grow with the run too.
    """
    chain = chain or []
    c = build_chain(chain, rate_hz, channels)
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((n_out, c.n_out, lags)) / np.sqrt(c.n_out * lags)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    W *= np.float32(weight_scale)  # a huge scale makes a model that overflows to inf (fault tests)
    if identity_channel is not None:
        W[0] = 0.0
        W[:, identity_channel] = 0.0  # the other outputs do not read the counter (see the docstring)
        W[0, identity_channel, lags - 1] = 1.0
        b[0] = 0.0
    meta = ModelMetadata(
        name=path.stem, task="classification" if classifier else "regression",
        rate_hz=rate_hz, channels=channels, preprocessing=c.specs,
        model_rate_hz=c.rate_out_hz, model_channels=c.n_out,
        outputs=[OutputSpec(name=f"y{i}", unit="a.u.") for i in range(n_out)], receptive_field=lags,
        provenance={"data": "random weights for tests"},
    )
    return write_model(causal_conv_graph(W, b, meta, softmax=classifier), path)
