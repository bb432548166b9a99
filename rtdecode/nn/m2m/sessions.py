"""The mapping sessions of a training run: tables, usable pulses and their |E| volumes.

Training sessions are split 9:1 into calibration and test pulses per repeat (seed 001); held-out
sessions (other session seeds of the simulator, or other tables) are never fitted on and give
the headline scores. Simulated sessions are written as tables into ``<out_dir>/sessions`` by
the simulator's own offline path (``rtdecode simulate tms --offline --table``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtdecode.nn.m2m.config import M2mDataConfig, ProtocolConfig
from rtdecode.tms.m2m_data import session_magnitudes
from rtdecode.tms.session_table import MappingTable, read_table
from rtdecode.tms.volume import VolumeModel

logger = logging.getLogger(__name__)

__all__ = ["Session", "load_sessions", "simulate_table", "splits"]


@dataclass
class Session:
    """A session's usable pulses and their |E| volumes float16 (N, X, Y, Z), V/m."""

    name: str
    table: MappingTable
    mags: np.ndarray


def simulate_table(subject: int, seed: int, adaptive: int, preactivation_prob: float,
                   path: Path) -> Path:
    """Write a simulated mapping session's table to ``path`` (kept when it exists)."""
    if path.exists():
        return path
    from rtdecode.tms.mapping import mapping_protocol
    from rtdecode.tms.simulate import TmsSimulator, write_table
    from rtdecode.tms.subject import VirtualSubject

    subj = VirtualSubject(subject)
    protocol = mapping_protocol(subj.hotspot(), np.random.default_rng([seed, 3]), adaptive=adaptive)
    sim = TmsSimulator(subj, protocol, seed=seed, preactivation_prob=preactivation_prob)
    while sim.plan_next():
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(sim, str(path))
    logger.info("simulated session subject %d seed %d: %d pulses -> %s", subject, seed,
                len(sim.trials), path)
    return path


def _tables(cfg: M2mDataConfig, out_dir: Path) -> tuple[list[Path], list[Path]]:
    sim = cfg.simulate
    if sim is None:
        return list(cfg.train), list(cfg.test)
    folder = out_dir / "sessions"

    def one(s: int) -> Path:
        return simulate_table(sim.subject, s, sim.adaptive, sim.preactivation_prob,
                              folder / f"subject{sim.subject}_seed{s}_adaptive{sim.adaptive}.csv")

    return [one(s) for s in sim.train_seeds], [one(s) for s in sim.test_seeds]


def _usable(table: MappingTable, proto: ProtocolConfig) -> MappingTable:
    return table.subset(~table.preactivated) if proto.exclude_preactivated else table


def _concat(tables: list[MappingTable]) -> MappingTable:
    t0 = tables[0]
    if any(t.muscles != t0.muscles for t in tables):
        raise ValueError("training sessions list different muscles")
    files = None if any(t.efield_files is None for t in tables) else [
        f for t in tables for f in t.efield_files or []]
    return MappingTable(np.concatenate([t.pulse for t in tables]),
                        np.concatenate([t.pose for t in tables]),
                        np.concatenate([t.intensity_mso for t in tables]),
                        np.concatenate([t.mep_uv for t in tables]), list(t0.muscles),
                        np.concatenate([t.preactivated for t in tables]), files,
                        "+".join(t.source for t in tables))


def load_sessions(cfg: M2mDataConfig, proto: ProtocolConfig, vm: VolumeModel, out_dir: Path
                  ) -> tuple[Session, list[Session]]:
    """The training session (all training tables together) and the held-out sessions."""
    train_paths, test_paths = _tables(cfg, out_dir)
    cache = cfg.cache_dir or out_dir / "cache"
    table = _concat([_usable(read_table(p, cfg.rmt_mso), proto) for p in train_paths])
    if cfg.max_train_pulses is not None:
        table = table.subset(np.arange(min(cfg.max_train_pulses, len(table))))
    train = Session("+".join(p.stem for p in train_paths), table, session_magnitudes(table, vm, cache))
    tests = []
    for p in test_paths:
        t = _usable(read_table(p, cfg.rmt_mso), proto)
        if t.muscles != table.muscles:
            raise ValueError(f"held-out session {p} has muscles {t.muscles}, training {table.muscles}")
        tests.append(Session(p.stem, t, session_magnitudes(t, vm, cache)))
    return train, tests


def splits(n: int, proto: ProtocolConfig, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per repeat: (fit, val, test) pulse indices — a 9:1 calibration/test split, and the
    calibration split again for early stopping (sorted index arrays)."""
    out = []
    for r in range(proto.repeats):
        order = np.random.default_rng([seed, 15, r]).permutation(n)
        n_test = max(1, int(round(proto.test_fraction * n)))
        calib, test = order[n_test:], order[:n_test]
        n_val = max(1, int(round(proto.val_fraction * len(calib))))
        out.append((np.sort(calib[n_val:]), np.sort(calib[:n_val]), np.sort(test)))
    return out
