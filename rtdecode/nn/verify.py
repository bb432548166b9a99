"""Prove a model file keeps the streaming-state contract: ``rtdecode verify MODEL.onnx``.

On seeded random input frames it compares

(a) ONNX Runtime offline (one call over all frames),
(b) ONNX Runtime streaming in random chunk sizes (1 frame up to half the input), on each
    requested execution provider, through the daemon's own :class:`StreamingModel`,
(c) the torch model offline, from the ``<stem>.torch.npz`` sidecar written at export
    (skipped, with the reason, when there is none, e.g. numpy-built linear models),
(d) the final states of ONNX streaming against the torch ``step`` run over the same frames,

and reports the largest absolute and relative error of each comparison. A comparison
passes when ``max|a − b| ≤ tolerance · max(1, max|reference|)``.

torch is imported only when a sidecar exists, so this works on a machine without torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import ModelError
from rtdecode.nn.sidecar import sidecar_path
from rtdecode.runtime.metadata import ModelMetadata
from rtdecode.runtime.providers import available_providers
from rtdecode.runtime.streaming import StreamingModel, read_metadata

logger = logging.getLogger(__name__)

__all__ = ["chunk_sizes", "compare", "verify_model"]

_CHUNKS = (1, 2, 3, 5, 8, 13, 31, 64, 100, 257)


class _InspectableModel(StreamingModel):
    """The daemon's streaming model, with its states readable (for comparison (d))."""

    @property
    def states(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._state.items()}


def chunk_sizes(frames: int, rng: np.random.Generator) -> list[int]:
    """Random chunk lengths summing to ``frames``: a 1-frame chunk, a large one, then random.

    Parameters
    ----------
    frames : int
        Total frames.
    rng : numpy Generator

    Returns
    -------
    list of int
    """
    sizes = [1, max(1, frames // 2)]
    while sum(sizes) < frames:
        sizes.append(int(rng.choice(_CHUNKS)))
    out, total = [], 0
    for n in sizes:
        n = min(n, frames - total)
        if n <= 0:
            break
        out.append(n)
        total += n
    return out


def compare(name: str, got: np.ndarray, ref: np.ndarray, tolerance: float) -> dict[str, Any]:
    """One comparison entry: largest absolute and relative error, and whether it passes."""
    if got.shape != ref.shape:
        return {"name": name, "max_abs": float("inf"), "max_rel": float("inf"), "ok": False,
                "error": f"shape {list(got.shape)} vs reference {list(ref.shape)}"}
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    ok = bool(np.isfinite(got).all() and max_abs <= tolerance * max(1.0, scale))
    return {"name": name, "max_abs": max_abs, "max_rel": max_rel, "ok": ok}


def _failure(name: str, error: str) -> dict[str, Any]:
    return {"name": name, "max_abs": float("inf"), "max_rel": float("inf"), "ok": False, "error": error}


def _run_onnx(path: Path, provider: str, x: np.ndarray, sizes: list[int]
              ) -> tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(actual provider, offline y, streamed y, final states) on one execution provider."""
    m = _InspectableModel(path, [provider], require_provider=True)
    m.open()
    try:
        offline = m.step(x).copy()
        m.reset()
        parts, start = [], 0
        for n in sizes:
            parts.append(m.step(x[start:start + n]).copy())
            start += n
        return str(m.provider), offline, np.concatenate(parts), m.states
    finally:
        m.close()


def _torch_reference(sidecar: Path, meta: Any, x: np.ndarray
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Torch offline output (T, K) and final step states from the sidecar checkpoint."""
    import torch

    from rtdecode.nn.checkpoint import load_checkpoint
    from rtdecode.nn.models import streaming_core

    model, _spec, extra = load_checkpoint(sidecar)
    core = streaming_core(model, int(extra.get("session", 0))).eval()
    if core.in_channels != meta.model_channels or core.out_channels != len(meta.outputs):
        raise ModelError(f"sidecar {sidecar.name} holds a model for {core.in_channels} → "
                         f"{core.out_channels} channels, the ONNX file says {meta.model_channels} → "
                         f"{len(meta.outputs)}", "re-export the model (the sidecar belongs to another one)")
    shapes = [list(s) for s in core.state_shapes(1)]
    if shapes != [s.shape for s in meta.states]:
        raise ModelError(f"sidecar {sidecar.name} has state shapes {shapes}, the ONNX metadata "
                         f"{[s.shape for s in meta.states]}", "re-export the model")
    softmax = meta.task == "classification" and bool(extra.get("classifier_probabilities", True))
    xt = torch.from_numpy(np.ascontiguousarray(x.T[None]))
    with torch.no_grad():
        y = core(xt)
        _, states = core.step(xt, core.zero_states(1))
        if softmax:
            y = torch.softmax(y, dim=1)
    final = {s.name: st.numpy() for s, st in zip(meta.states, states, strict=True)}
    return y[0].numpy().T, final


def verify_model(path: str | Path, *, providers: list[str] | None = None, frames: int = 2000,
                 seed: int = 0, tolerance: float = 1e-4) -> dict[str, Any]:
    """Compare torch offline, ONNX offline and ONNX streaming for one model file.

    Parameters
    ----------
    path : path
        The ``.onnx`` model (its sidecar ``<stem>.torch.npz`` is used when present).
    providers : list of str, optional
        Execution providers (short names: tensorrt, cuda, cpu); default all available.
    frames : int
        Random input frames (standard normal, float32, at the model's frame rate).
    seed : int
        Seed of the input frames and chunk sizes.
    tolerance : float
        Pass when ``max|err| ≤ tolerance · max(1, max|reference|)``.

    Returns
    -------
    dict
        ``ok``, ``max_abs``, ``max_rel``, ``comparisons`` (name, max_abs, max_rel, ok
        [, error]), ``skipped`` (name, reason), ``providers`` (requested → used),
        ``chunks`` (number of streaming chunks), and the inputs' settings.

    Raises
    ------
    ModelError
        If the model file cannot be read or breaks the streaming contract, or a provider
        name is unknown.
    """
    path = Path(path)
    if frames < 1:
        raise ModelError(f"frames must be ≥ 1, got {frames}", "pass a positive --frames")
    meta = read_metadata(path)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((frames, meta.model_channels)).astype(np.float32)
    sizes = chunk_sizes(frames, rng)
    providers = list(providers) if providers else available_providers()
    comps: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    used: dict[str, str] = {}
    runs: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = {}
    for p in providers:
        try:
            actual, offline, streamed, states = _run_onnx(path, p, x, sizes)
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime's own error types; report, do not stop the others
            comps.append(_failure(f"onnx run [{p}]", f"{type(exc).__name__}: {exc}"))
            continue
        used[p] = actual
        runs[p] = (offline, streamed, states)
        comps.append(compare(f"onnx streaming vs onnx offline [{p}]", streamed, offline, tolerance))
    if not runs:
        return _report(path, comps, skipped, used, tolerance, frames, seed, len(sizes))
    providers = [p for p in providers if p in runs]
    ref_p = providers[0]
    ref = runs[ref_p][0]
    for p in providers[1:]:
        comps.append(compare(f"onnx offline [{p}] vs onnx offline [{ref_p}]", runs[p][0], ref, tolerance))

    _compare_torch(path, meta, x, runs, providers, tolerance, comps, skipped)
    return _report(path, comps, skipped, used, tolerance, frames, seed, len(sizes))


def _compare_torch(path: Path, meta: ModelMetadata, x: np.ndarray,
                   runs: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
                   providers: list[str], tolerance: float, comps: list[dict[str, Any]],
                   skipped: list[dict[str, str]]) -> None:
    """Append the torch comparisons (offline output, final step states) to ``comps``, or why they
    were skipped to ``skipped``. ``runs[p]`` is provider p's (offline, streamed, final states);
    the first of ``providers`` is the reference."""
    sidecar = sidecar_path(path)
    reason = None
    if not sidecar.exists():
        reason = f"no torch checkpoint {sidecar.name} next to the model (numpy-built or exported without one)"
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            reason = "torch is not installed (pip install 'rtdecode[train]')"
    if reason:
        skipped.append({"name": "torch offline / torch step states", "reason": reason})
        return
    try:
        y_torch, st_torch = _torch_reference(sidecar, meta, x)
    except ModelError as exc:
        comps.append(_failure("torch offline vs onnx offline", exc.what))
        return
    ref_p = providers[0]
    comps.append(compare(f"onnx offline [{ref_p}] vs torch offline", runs[ref_p][0], y_torch, tolerance))
    for p in providers:
        comps.append(compare(f"onnx streaming [{p}] vs torch offline", runs[p][1], y_torch, tolerance))
        for name, st in st_torch.items():
            comps.append(compare(f"final {name} streaming [{p}] vs torch step", runs[p][2][name], st,
                                 tolerance))
    if not st_torch:
        skipped.append({"name": "final states", "reason": "the model keeps no state"})


def _report(path: Path, comps: list[dict[str, Any]], skipped: list[dict[str, str]], used: dict[str, str],
            tolerance: float, frames: int, seed: int, chunks: int) -> dict[str, Any]:
    report = {
        "model": str(path),
        "ok": bool(comps) and all(c["ok"] for c in comps),
        "max_abs": max((c["max_abs"] for c in comps), default=0.0),
        "max_rel": max((c["max_rel"] for c in comps), default=0.0),
        "tolerance": tolerance,
        "frames": frames,
        "seed": seed,
        "chunks": chunks,
        "providers": used,
        "comparisons": comps,
        "skipped": skipped,
    }
    logger.info("verify %s: %s (max abs err %.3g, %d comparisons, %d skipped)", path.name,
                "ok" if report["ok"] else "FAILED", report["max_abs"], len(comps), len(skipped))
    return report
