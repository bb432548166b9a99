"""Re-run a recorded session's decoders offline, exactly as the daemon served them.

The daemon's output depends on the input *and* on how it was served: chunk boundaries
(a decimating chain, ``publish = "latest"`` and coalescing while behind see them), the
checked samples and flags of each chunk (the input checks' repairs, GAP, BAD_INPUT), and
where the state was reset (a chunk that ended a STALE episode, with
``service.on_reconnect = "reset"``). The session file records all of it, so running the
recorded chunks through a fresh :class:`~rtdecode.service.pipeline.Pipeline` built from the
recorded config gives the published estimates bit for bit. Each recorded estimate is
matched to its reproduced row by ``t_source`` (so it does not matter which rows were
published).

Not reproduced: STALE safe values (published while no input came), the fused topic (its
publish times come from the loop's clock), rows of a model call that failed or missed its
deadline live, and the ``LATE`` flag (set at publish time against the latency budget):
timing, not data. :func:`compare` counts them apart.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np

from rtdecode.config import Config, load_config
from rtdecode.errors import DataError, ModelError
from rtdecode.record.reader import Session
from rtdecode.record.recorder import file_sha256
from rtdecode.service.pipeline import Pipeline
from rtdecode.types import Chunk, Flags

logger = logging.getLogger(__name__)


def session_config(session: Session, models: dict[str, Path] | None = None) -> Config:
    """The recorded config, with model paths checked against the recorded SHA-256.

    Parameters
    ----------
    models : dict, optional
        Decoder name → model file to use instead of the recorded path (same file elsewhere).
    """
    raw = copy.deepcopy(session.config)
    for key in ("record", "lsl_outlet", "fusion"):  # not needed to re-run the decoders
        raw.pop(key, None)
    raw["sink"] = {"publish": raw.get("sink", {}).get("publish", "every")}  # no keys, no socket
    if models:  # moved model files: point the config at them before it checks they exist
        for d in raw.get("decoders", []):
            if d.get("name") in models:
                d["model"] = str(models[d["name"]])
    cfg = load_config(data=raw, environ={})  # the recorded config as it was, no overrides
    for d in cfg.decoders:
        rec = session.models.get(d.name, {})
        if not d.model.exists():
            raise ModelError(f"decoder {d.name!r}: recorded model {d.model} does not exist here",
                             f"pass --model-path {d.name}=PATH to the same model file")
        if rec.get("sha256") and file_sha256(d.model) != rec["sha256"]:
            raise ModelError(f"decoder {d.name!r}: {d.model} is not the model file that was served "
                             f"(SHA-256 differs from the recording)",
                             f"pass --model-path {d.name}=PATH to the file with SHA-256 "
                             f"{rec['sha256'][:12]}…")
    return cfg


def reproduce(session: Session, models: dict[str, Path] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Feed the recorded chunks through the recorded decoders.

    Returns
    -------
    dict
        Per decoder topic: ``y`` float32 (m, K), ``t`` float64 (m,), ``flags`` uint32 (m,).
    """
    cfg = session_config(session, models)
    st = session.stream
    pipe = Pipeline(cfg.decoders, float(st["rate_hz"]), int(st["n_channels"]), cfg.preprocessing,
                    counters=cfg.source.counters()).open()
    reset = cfg.service.on_reconnect == "reset"
    rows: dict[str, list] = {d.topic: [] for d in pipe.decoders}
    try:
        for c in session.chunks:
            s, n = int(c["start"]), int(c["n"])
            if c["resumed"] and reset:
                pipe.reset()
            chunk = Chunk(samples=session.samples[s:s + n], t_lsl=session.t_lsl[s:s + n],
                          first_index=int(c["first_index"]), flags=int(c["flags"]))
            for d, o in zip(pipe.decoders, pipe.run(chunk), strict=True):  # checked already
                if o.y.shape[0]:
                    rows[d.topic].append((o.y.copy(), o.t.copy(), o.flags.copy()))
    finally:
        pipe.close()
    return {topic: {"y": np.concatenate([a[0] for a in r]) if r else np.zeros((0, 0), np.float32),
                    "t": np.concatenate([a[1] for a in r]) if r else np.zeros(0),
                    "flags": np.concatenate([a[2] for a in r]) if r else np.zeros(0, np.uint32)}
            for topic, r in rows.items()}


def compare(session: Session, reproduced: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """Recorded estimates vs :func:`reproduce`, per decoder topic.

    Returns
    -------
    dict
        Per topic: ``published`` (estimates that came from input), ``stale`` (safe values, not
        reproduced), ``timing`` (DEGRADED rows that differ: a model call that failed or missed its
        deadline live), ``late`` (flagged
        LATE at publish; compared without that bit), ``compared``, ``equal`` (values, flags and
        t_source bit for bit), ``max_abs_diff``.

    Raises
    ------
    DataError
        A recorded estimate has no reproduced row at its ``t_source`` (an incomplete recording).
    """
    late = int(Flags.LATE)
    keep_bits = np.uint32(0xFFFFFFFF ^ late)
    out = {}
    for topic, rep in reproduced.items():
        rec = session.estimates(topic)
        fresh = (rec["flags"] & Flags.STALE) == 0
        f_rec, t_rec, y_rec = rec["flags"][fresh], rec["t_source"][fresh], rec["values"][fresh]
        i = np.clip(np.searchsorted(rep["t"], t_rec), 0, max(rep["t"].size - 1, 0))
        found = (rep["t"][i] == t_rec) if rep["t"].size else np.zeros(t_rec.size, bool)
        if not found.all():
            raise DataError(f"topic {topic!r}: {int((~found).sum())} recorded estimates have no "
                            "reproduced row", "the recording is incomplete (dropped items or a later part)")
        y_rep, f_rep = rep["y"][i], rep["flags"][i]
        same = np.all(y_rec == y_rep, axis=1) & ((f_rec & keep_bits) == f_rep)
        ok = same | ((f_rec & Flags.DEGRADED) == 0)  # a DEGRADED row that differs: a live failure
        out[topic] = {"published": int(fresh.sum()), "stale": int((~fresh).sum()),
                      "timing": int((~ok).sum()), "late": int(((f_rec & late) != 0).sum()),
                      "compared": int(ok.sum()), "equal": int(same[ok].sum()),
                      "max_abs_diff": float(np.abs(y_rec[ok] - y_rep[ok]).max()) if ok.any() else 0.0}
    return out
