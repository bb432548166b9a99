"""Build the shipped iBCI example model ``models/ibci_velocity.onnx`` (``make models``).

Simulated broadband data (``rtdecode simulate broadband``: 96 electrodes at 30 kHz, each with
one unit of the simulated cortex, subject 7) → the iBCI front end (common average reference,
causal 250 Hz high-pass, threshold crossings at -4.5 × RMS and spike-band power in 20 ms bins,
standardised) → a decoder of 2-D hand velocity.

Protocol
--------
1. Session A (seed 21): thresholds from its first ``calib_s`` (the calibration period), frames
   of all ``train_s``.
2. Candidates — the steady-state Kalman filter and Wiener filters over 1, 2, 3, 5 bins — are fitted
   on the first 80 % of session A's frames and scored (mean R² of vx, vy) on the last 20 %;
   the best is refitted on all of session A and written with its chain, bounds and metrics.
3. Held out: session B (seed 22, same subject: another day of the same array), with the shipped
   thresholds and with thresholds recalibrated on B's first ``calib_s`` (``rtdecode
   thresholds``); every candidate and the feature ablations (crossings only, power only) are
   scored there too, for the card.

    python scripts/build_ibci_model.py [--channels 96] [--train-s 300] [--out models]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rtdecode.commands.train import git_commit
from rtdecode.ibci.fit import Frames, IbciFit, fit_decoder, frame_set, front_end_frames, write_ibci_model
from rtdecode.ibci.thresholds import recalibrate_chain
from rtdecode.metrics import r2_per_column
from rtdecode.runtime.streaming import read_metadata
from rtdecode.sources.broadband import BroadbandSimulator, simulator_blocks
from rtdecode.sources.simulator import DEFAULT_SUBJECT

logger = logging.getLogger("build_ibci_model")
ROOT = Path(__file__).resolve().parents[1]
RATE = 30000.0
SEEDS = {"train": 21, "test": 22}
CANDIDATES: dict[str, dict] = {"kalman": {}, **{f"wiener_{k}": {"lags": k, "ridge": 1e-2} for k in (1, 2, 3, 5)}}


def _session(seed: int, channels: int, seconds: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A simulated session's blocks with the velocity (vx, vy) as targets."""
    sim = BroadbandSimulator(channels, RATE, seed, subject_seed=DEFAULT_SUBJECT)
    return ((x, y[:, 2:4]) for x, y in simulator_blocks(sim, seconds))


def _calibration(seed: int, channels: int, seconds: float):  # noqa: ANN202
    return lambda: (x for x, _ in _session(seed, channels, seconds))


def _fit(frames: Frames, name: str, rows: slice = slice(None)) -> IbciFit:
    kind = "kalman" if name == "kalman" else "wiener"
    return fit_decoder(frames, kind, rows, **CANDIDATES[name])


def _score(fit: IbciFit, z: np.ndarray, y: np.ndarray, skip: int = 50) -> float:
    """Mean R² of the outputs, the first ``skip`` frames (1 s) left out."""
    return float(np.mean(r2_per_column(y[skip:], fit.decoder.predict(z)[skip:])))


def _select(frames: Frames) -> tuple[str, dict[str, float]]:
    """The candidate with the best validation score (fit on the first 80 %, scored on the rest)."""
    cut = int(0.8 * len(frames.y))
    val = {name: round(_score(_fit(frames, name, slice(0, cut)), frames.z[cut:], frames.y[cut:], skip=10), 4)
           for name in CANDIDATES}
    return max(val, key=lambda k: val[k]), val


def _held_out(frames: Frames, best: str, test_z: np.ndarray, test_y: np.ndarray) -> dict[str, float]:
    """Every candidate (refitted on all of session A) and the best one's feature ablations on B."""
    out = {name: round(_score(_fit(frames, name), test_z, test_y), 4) for name in CANDIDATES}
    c = frames.n_channels
    for label, cols in (("crossings_only", slice(0, c)), ("power_only", slice(c, 2 * c))):
        sub = Frames(frames.z[:, cols], frames.y, frames.specs, frames.rate_hz, c, frames.raw, frames.noise_rms)
        out[f"{best}_{label}"] = round(_score(_fit(sub, best), test_z[:, cols], test_y), 4)
    return out


def build(out_dir: Path, *, channels: int = 96, train_s: float = 300.0, test_s: float = 120.0,
          calib_s: float = 30.0) -> dict:
    """Fit, select, write and score; returns the metrics (also in the model file and its card)."""
    a, b = SEEDS["train"], SEEDS["test"]
    frames = front_end_frames(_session(a, channels, train_s), _calibration(a, channels, calib_s), RATE, channels)
    best, val = _select(frames)
    fit = _fit(frames, best)
    test_z, test_y = frame_set(_session(b, channels, test_s), fit.specs, RATE, channels)
    recal = recalibrate_chain(fit.specs, RATE, channels, _calibration(b, channels, calib_s))
    rz, ry = frame_set(_session(b, channels, test_s), recal, RATE, channels)
    r2 = r2_per_column(test_y[50:], fit.decoder.predict(test_z)[50:])
    metrics = {"selected": best, "validation_r2_mean": val, "heldout_r2_mean": _held_out(frames, best, test_z, test_y),
               "r2_test": {"vx": round(float(r2[0]), 4), "vy": round(float(r2[1]), 4)},
               "r2_test_recalibrated_mean": round(_score(fit, rz, ry), 4)}
    prov = {"data": f"rtdecode simulate broadband: {channels} electrodes at {RATE:g} Hz, one unit of the "
                    f"simulated cortex each, subject {DEFAULT_SUBJECT}",
            "train": {"seed": a, "duration_s": train_s, "calibration_s": calib_s},
            "test": {"seed": b, "duration_s": test_s}, "selection": "validation: last 20 % of the training frames",
            "built_by": "scripts/build_ibci_model.py", "git_commit": git_commit(),
            "date": _dt.date.today().isoformat()}
    path = write_ibci_model(fit, out_dir / "ibci_velocity.onnx", output_names=["vx", "vy"],
                            output_units=["cm/s", "cm/s"], provenance=prov, metrics=metrics)
    write_card(out_dir / "ibci_velocity.onnx")
    logger.info("ibci_velocity (%s): held-out R² %s", best, metrics["r2_test"])
    return {"path": str(path), **fit.metrics, **metrics}


def _describe(name: str) -> str:
    if name == "kalman":
        return "steady-state Kalman filter (state vx, vy; observations the 2 C features)"
    opts = CANDIDATES[name]
    return f"Wiener filter over {opts['lags']} bins ({opts['lags'] * 20} ms), ridge {opts['ridge']:g}"


def write_card(model: Path) -> Path:
    """Write ``<model>.md`` from the numbers in the model file's metadata."""
    meta = read_metadata(model)
    m, prov = meta.metrics, meta.provenance
    channels, calib_s = meta.channels, prov["train"]["calibration_s"]
    train_s, test_s = prov["train"]["duration_s"], prov["test"]["duration_s"]
    val = m["validation_r2_mean"]
    rows = "\n".join(f"| {n} | {f'{val[n]:.3f}' if n in val else '–'} | {v:.3f} |"
                     for n, v in m["heldout_r2_mean"].items())
    band, tx = meta.preprocessing[1], meta.preprocessing[2]
    card = f"""# ibci_velocity — iBCI front end → 2-D hand velocity ({m['selected']})

*Generated by `scripts/build_ibci_model.py` (`make models`); do not edit by hand.*

| | |
|---|---|
| Task | continuous decoding of 2-D hand velocity (vx, vy, cm/s) from raw broadband intracortical data |
| Input | {channels} channels of broadband voltage (µV) at {RATE:g} Hz (`rtdecode simulate broadband --channels {channels}`) |
| Preprocessing (in the model file) | common average reference → causal Butterworth {band['btype']} order {band['order']} at {band['cutoff_hz']} Hz → threshold crossings at {tx['threshold']:g} × noise RMS (per channel, from the first {calib_s:g} s of the training session; median {m['noise_rms_median_uv']:.3g} µV) and spike-band power (mean x²) in {tx['bin_s'] * 1e3:g} ms bins → standardisation (training statistics): {2 * channels} features at {meta.model_rate_hz:g} Hz |
| Model | {_describe(m['selected'])}, chosen among the candidates below on a validation split of the training session |
| Training data | simulated subject {DEFAULT_SUBJECT}, session seed {SEEDS['train']}, {train_s:g} s |
| Held-out data | same subject, session seed {SEEDS['test']}, {test_s:g} s (first second left out) |
| Held-out R² | vx {m['r2_test']['vx']:.3f}, vy {m['r2_test']['vy']:.3f}; with thresholds recalibrated on the held-out session's first {calib_s:g} s (`rtdecode thresholds`): mean {m['r2_test_recalibrated_mean']:.3f} |

## Candidates (same frames)

Mean R² of vx, vy. Validation: fitted on the first 80 % of the training session, scored on the
last 20 %. Held out: refitted on the whole training session, scored on the held-out session.

| model | validation | held out |
|---|---|---|
{rows}

Limits: simulated data only (one cosine-tuned unit per electrode, stationary tuning, white
electrode noise). It exists to show and test the front end end to end; it will not decode a
real array. Train your own on your rig's data: docs/ibci.md.
"""
    path = model.with_suffix(".md")
    path.write_text(card, encoding="utf-8")
    return path


def main() -> None:
    """CLI entry."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=96)
    ap.add_argument("--train-s", type=float, default=300.0)
    ap.add_argument("--test-s", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--card-only", action="store_true", help="rewrite the card from the model file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.card_only:
        print(write_card(args.out / "ibci_velocity.onnx"))
        return
    res = build(args.out, channels=args.channels, train_s=args.train_s, test_s=args.test_s)
    print(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
