"""``rtdecode tms measure|curves``: the TMS event path offline.

``measure`` runs the live measurement over a recording and its markers and writes one row
per pulse. ``curves`` fits recruitment (input–output) curves per subject of a folder of TMS
sessions (the Oxford FDI layout) and saves a plot and the parameters (docs/tms.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.errors import ConfigError, DataError
from rtdecode.sinks.event_payload import EventFlags

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``tms`` subcommand (``measure``, ``curves``)."""
    p = subparsers.add_parser("tms", help="TMS pulses offline: MEP measures, recruitment curves",
                              description="The TMS event path offline (docs/tms.md).")
    sub = p.add_subparsers(dest="tms_command", metavar="ACTION", required=True)
    m = sub.add_parser("measure", help="measure every marked pulse of a recording (CSV)",
                       description="The live MEP measurement over a recording and its markers.")
    m.add_argument("recording", help="recording with markers (.xdf, a TMS .mat, a TMS folder)")
    m.add_argument("--stream", help="XDF stream, or the subject of a TMS folder (S1)")
    _measure_options(m)
    m.add_argument("--out", required=True, help="CSV file to write")
    m.set_defaults(func=run_measure)
    c = sub.add_parser("curves", help="fit recruitment curves per subject of a TMS folder",
                       description="Measure every pulse, fit a Boltzmann curve per subject "
                                   "(pre-activated pulses left out), save curves.json and "
                                   "curves.png, print a table.")
    c.add_argument("folder", help="folder of S<k>_Magstim_<I>percent.mat files")
    c.add_argument("--subjects", nargs="*", help="subjects (default: all in the folder)")
    c.add_argument("--out-dir", default="out/tms_curves", help="output folder")
    _measure_options(c)
    c.set_defaults(func=run_curves)
    return p


def _measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a service config whose [tms] section to use (default: "
                                    "defaults with --units)")
    p.add_argument("--units", choices=["uV", "mV", "V"], help="units of the recording (default: "
                   "the recording's, else the config's)")


def _tms_config(args: argparse.Namespace, file_units: str | None) -> Any:
    from rtdecode.config import load_config
    from rtdecode.tms.config import TmsConfig

    if args.config:
        cfg = load_config(args.config).tms
        if cfg is None:
            raise ConfigError(f"{args.config} has no [tms] section", "add one (docs/tms.md)")
    else:
        cfg = TmsConfig(markers={"name": "offline"})
    units = args.units or file_units
    return cfg.model_copy(update={"units": units}) if units else cfg


def run_measure(args: argparse.Namespace) -> int:
    """Run ``rtdecode tms measure``."""
    from rtdecode.io.readers import read_recording
    from rtdecode.tms.offline import measure_session, write_measures

    rec = read_recording(args.recording, stream=args.stream)
    cfg = _tms_config(args, (rec.meta.get("units") or {}).get("x"))
    labels, pulses = measure_session(rec, cfg)
    write_measures(args.out, labels, pulses)
    print(f"measured {len(pulses)} pulses x {len(labels)} channels -> {args.out}", file=sys.stderr)
    return 0


def run_curves(args: argparse.Namespace) -> int:
    """Run ``rtdecode tms curves``."""
    from rtdecode.io.datasets import read_tms_session, tms_session_files
    from rtdecode.tms.offline import measure_session
    from rtdecode.tms.recruitment import fit_recruitment

    subjects = args.subjects or list(tms_session_files(args.folder))
    if not subjects:
        raise DataError(f"{args.folder} holds no TMS sessions", "pass the oxford_fdi_io folder")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Any] = {}
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in subjects:
        rec = read_tms_session(args.folder, s)
        cfg = _tms_config(args, rec.meta["units"]["x"])
        _, pulses = measure_session(rec, cfg)
        keep = [(p.intensity, r.values[0, 0]) for p, r in pulses
                if not r.flags & (EventFlags.PREACTIVATED | EventFlags.NO_SAMPLES)]
        x, y = (np.array(v) for v in zip(*keep, strict=True))
        fit = fit_recruitment(x, y, unit=pulses[0][0].unit or "%MSO",
                              response_uv=cfg.measure.response_uv)
        rows[s] = {**fit.as_dict(), "excluded_pulses": len(pulses) - len(keep)}
        data[s] = (x, y)
    (out / "curves.json").write_text(json.dumps(rows, indent=2, allow_nan=True))
    _plot(data, rows, out / "curves.png")
    print(_table(rows))
    print(f"wrote {out / 'curves.json'} and {out / 'curves.png'}", file=sys.stderr)
    return 0


def _table(rows: dict[str, Any]) -> str:
    """Markdown table; * marks a threshold or plateau outside the tested intensities."""
    def num(v: float, fmt: str, ok: bool = True) -> str:
        return "–" if math.isnan(v) else format(v, fmt) + ("" if ok else "*")

    lines = ["| subject | pulses (excl.) | intensities | plateau µV | I50 | k | threshold | "
             "empirical threshold | slope µV/% | R² | R² LOIO |", "|---" * 11 + "|"]
    for s, r in rows.items():
        lines.append(
            f"| {s} | {r['n_pulses']} ({r['excluded_pulses']}) | {r['n_intensities']} | "
            f"{num(r['plateau_uv'], '.0f', r['plateau_in_range'])} | {r['i50']:.1f} | "
            f"{r['k']:.2f} | {num(r['threshold'], '.1f', r['threshold_in_range'])} | "
            f"{num(r['empirical_threshold'], '.0f')} | {r['slope_uv_per_unit']:.0f} | "
            f"{r['r2']:.2f} | {num(r['r2_loio'], '.2f')} |")
    return "\n".join(lines)


def _plot(data: dict[str, tuple[np.ndarray, np.ndarray]], rows: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:
        raise ConfigError("the recruitment plot needs matplotlib",
                          "pip install matplotlib (it is in the train and bench extras)") from exc
    from rtdecode.tms.recruitment import boltzmann

    n = len(data)
    cols = min(3, n)
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(3.2 * cols, 2.6 * math.ceil(n / cols)),
                             squeeze=False, sharey=False)
    for ax, (s, (x, y)) in zip(axes.flat, data.items(), strict=False):
        r = rows[s]
        grid = np.linspace(x.min() - 3, x.max() + 3, 200)
        ax.plot(x, y / 1e3, ".", ms=3, alpha=0.5, color="0.4")
        ax.plot(grid, boltzmann(grid, r["plateau_uv"], r["i50"], r["k"]) / 1e3, color="C3")
        if np.isfinite(r["threshold"]):
            ax.axvline(r["threshold"], color="C0", lw=0.8, ls="--")
        ax.set_title(f"{s}: I50 {r['i50']:.1f}, R² {r['r2']:.2f}", fontsize=9)
        ax.set_xlabel(f"intensity ({r['unit']})", fontsize=8)
        ax.set_ylabel("MEP p2p (mV)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
