"""Models the latency benchmarks run: the shipped ones, and linear models of any size.

:func:`linear_model` writes a streaming causal linear filter (random weights) for any channel
count and rate with the project's own export code (``rtdecode.export.onnx_graphs``, needs the
``onnx`` package from the ``bench`` extra) — the same construction as ``tests/modelfactory.py``,
here so the benchmarks do not import the test tree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

#: Shipped models by short name: (file, channels, rate Hz, description).
SHIPPED = {
    "gamma": ("openhdemg_gamma.onnx", 64, 2048.0,
              "Gamma CNN (seed 000) on openhdemg HD-sEMG: HP 20 Hz → Gaussian RMS → ÷20 → 102.4 Hz"),
    "gesture": ("flexemg_mlp.onnx", 64, 1000.0,
                "FrameMLP gesture classifier: HP 20 Hz → 50 ms RMS → ÷10 → 100 Hz log-envelope MLP"),
    "wiener": ("cortex_wiener.onnx", 50, 1000.0, "Wiener filter (seed 002), 20 ms bins, 10 lags"),
}


def sweep_chain(rate_hz: float) -> list[dict]:
    """The sweeps' preprocessing: a 2nd-order causal high-pass (20 Hz, or rate/5 below 100 Hz)."""
    return [{"kind": "butter", "btype": "highpass", "order": 2, "cutoff_hz": min(20.0, rate_hz / 5)}]


def linear_model(path: Path, *, rate_hz: float, channels: int, chain: list[dict] | None = None,
                 lags: int = 10, n_out: int = 2, seed: int = 0) -> Path:
    """Write a streaming causal linear model (``lags`` taps per channel, random weights).

    Parameters
    ----------
    path : Path
        Output ``.onnx`` file.
    rate_hz : float
        Input rate, Hz.
    channels : int
        Input channels.
    chain : list of dict, optional
        Preprocessing chain specs (``rtdecode.dsp``); default :func:`sweep_chain`.
    lags, n_out, seed : int
        Taps per channel, outputs, weight seed.
    """
    from rtdecode.dsp import build_chain
    from rtdecode.export.onnx_graphs import causal_conv_graph, write_model
    from rtdecode.runtime.metadata import ModelMetadata, OutputSpec

    chain = sweep_chain(rate_hz) if chain is None else chain
    c = build_chain(chain, rate_hz, channels)
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((n_out, c.n_out, lags)) / np.sqrt(c.n_out * lags)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    meta = ModelMetadata(
        name=path.stem, task="regression", rate_hz=rate_hz, channels=channels, preprocessing=c.specs,
        model_rate_hz=c.rate_out_hz, model_channels=c.n_out,
        outputs=[OutputSpec(name=f"y{i}", unit="a.u.") for i in range(n_out)], receptive_field=lags,
        provenance={"data": "random weights (benchmark)"},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_model(causal_conv_graph(W, b, meta), path)


def ibci_chain(channels: int) -> list[dict]:
    """The iBCI benchmark's front end: CAR → 250 Hz high-pass → crossings at -4.5 × 10 µV and
    spike-band power in 20 ms bins (the simulated electrodes' RMS is ~10-15 µV; the cost of the
    front end does not depend on the thresholds)."""
    from rtdecode.ibci.frontend import frontend_chain

    return frontend_chain([10.0] * channels)


def resolve(model: str, channels: int, rate_hz: float, work: Path) -> tuple[Path, str]:
    """Path and description of a benchmark model: a shipped short name, ``linear``, ``ibci``
    (the iBCI front end → a causal linear decoder over 5 bins), or a file."""
    if model in SHIPPED:
        fname, ch, rate, desc = SHIPPED[model]
        if (ch, rate) != (channels, rate_hz):
            raise ValueError(f"model {model!r} takes {ch} ch @ {rate:g} Hz, not {channels} @ {rate_hz:g}")
        return MODELS / fname, desc
    if model == "linear":
        path = work / f"linear-{channels}ch-{rate_hz:g}hz.onnx"
        if not path.exists():
            linear_model(path, rate_hz=rate_hz, channels=channels)
        return path, f"causal linear filter (HP {min(20.0, rate_hz / 5):g} Hz, 10 lags, 2 outputs)"
    if model == "ibci":
        path = work / f"ibci-{channels}ch-{rate_hz:g}hz.onnx"
        if not path.exists():
            linear_model(path, rate_hz=rate_hz, channels=channels, chain=ibci_chain(channels), lags=5)
        return path, ("iBCI front end (CAR, 4th-order 250 Hz high-pass, threshold crossings + spike-band "
                      "power in 20 ms bins) → causal linear decoder over 5 bins (random weights), 2 outputs")
    p = Path(model)
    if not p.exists():
        raise ValueError(f"model {model!r} is neither {sorted(SHIPPED)}, 'linear', 'ibci' nor a file")
    return p, p.name
