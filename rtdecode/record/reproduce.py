"""Re-run a recorded session's decoders offline, exactly as the daemon served them.

The daemon's output depends on the input *and* on how it was served: chunk boundaries
(a decimating chain or ``publish = "latest"`` sees them), the input flags of each chunk
(GAP), and where the state was reset (a chunk that ended a STALE episode, with
``service.on_reconnect = "reset"``). The session file records all three, so feeding the
recorded chunks through a fresh :class:`~rtdecode.service.pipeline.Pipeline` built from the
recorded config gives the published estimates bit for bit.

Not reproduced: STALE safe values (published while no input came), the fused topic (its
publish times come from the loop's clock), and rows of a model call that failed or missed
its deadline live (timing, not data). :func:`compare` counts them apart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtdecode.config import Config
from rtdecode.errors import DataError, ModelError
from rtdecode.record.reader import Session
from rtdecode.record.recorder import file_sha256
from rtdecode.service.pipeline import Pipeline
from rtdecode.types import Flags

logger = logging.getLogger(__name__)


def session_config(session: Session, models: dict[str, Path] | None = None) -> Config:
    """The recorded config, with model paths checked against the recorded SHA-256.

    Parameters
    ----------
    models : dict, optional
        Decoder name → model file to use instead of the recorded path (same file elsewhere).
    """
    raw = dict(session.config)
    for key in ("record", "lsl_outlet", "fusion"):  # not needed to re-run the decoders
        raw.pop(key, None)
    raw["sink"] = {"publish": raw.get("sink", {}).get("publish", "every")}  # no keys, no socket
    cfg = Config.model_validate(raw)
    for d in cfg.decoders:
        if models and d.name in models:
            d.model = Path(models[d.name])
        rec = session.models.get(d.name, {})
        if not d.model.exists():
            raise ModelError(f"decoder {d.name!r}: recorded model {d.model} does not exist here",
                             f"pass --model {d.name}=PATH to the same model file")
        if rec.get("sha256") and file_sha256(d.model) != rec["sha256"]:
            raise ModelError(f"decoder {d.name!r}: {d.model} is not the model file that was served "
                             f"(SHA-256 differs from the recording)",
                             f"pass --model {d.name}=PATH to the file with SHA-256 {rec['sha256'][:12]}…")
    return cfg


def reproduce(session: Session, models: dict[str, Path] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Feed the recorded chunks through the recorded decoders.

    Returns
    -------
    dict
        Per decoder topic: ``y`` float32 (m, K), ``t`` float64 (m,), ``flags`` uint32 (m,) and
        ``last_of_chunk`` bool (m,) (the rows ``sink.publish = "latest"`` publishes).
    """
    cfg = session_config(session, models)
    st = session.stream
    pipe = Pipeline(cfg.decoders, float(st["rate_hz"]), int(st["n_channels"]), cfg.preprocessing).open()
    reset = cfg.service.on_reconnect == "reset"
    rows: dict[str, list] = {d.topic: [] for d in pipe.decoders}
    try:
        for c in session.chunks:
            s, n = int(c["start"]), int(c["n"])
            if c["resumed"] and reset:
                pipe.reset()
            for o in pipe.process(session.samples[s:s + n], session.t_lsl[s:s + n], int(c["flags"])):
                if o.y.shape[0]:
                    last = np.zeros(o.y.shape[0], bool)
                    last[-1] = True
                    rows[o.topic].append((o.y.copy(), o.t.copy(), o.flags.copy(), last))
    finally:
        pipe.close()
    out = {}
    for topic, r in rows.items():
        out[topic] = {"y": np.concatenate([a[0] for a in r]) if r else np.zeros((0, 0), np.float32),
                      "t": np.concatenate([a[1] for a in r]) if r else np.zeros(0),
                      "flags": np.concatenate([a[2] for a in r]) if r else np.zeros(0, np.uint32),
                      "last_of_chunk": np.concatenate([a[3] for a in r]) if r else np.zeros(0, bool)}
    return out


def compare(session: Session, reproduced: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """Recorded estimates vs :func:`reproduce`, per decoder topic.

    Returns
    -------
    dict
        Per topic: ``published`` (estimates that came from input), ``stale`` (safe values,
        not reproduced), ``timing`` (rows of failed / late model calls), ``compared``,
        ``equal`` (values, flags and t_source bit for bit), ``max_abs_diff``.
    """
    publish = session.config.get("sink", {}).get("publish", "every")
    out = {}
    for topic, rep in reproduced.items():
        rec = session.estimates(topic)
        stale = (rec["flags"] & Flags.STALE) != 0
        timing = ((rec["flags"] & Flags.DEGRADED) != 0) & ~stale
        keep = ~stale
        y_rec, f_rec, t_rec = rec["values"][keep], rec["flags"][keep], rec["t_source"][keep]
        sel = rep["last_of_chunk"] if publish == "latest" else np.ones(rep["t"].size, bool)
        y_rep, f_rep, t_rep = rep["y"][sel], rep["flags"][sel], rep["t"][sel]
        if y_rec.shape[0] != y_rep.shape[0]:
            raise DataError(f"topic {topic!r}: {y_rec.shape[0]} recorded estimates, {y_rep.shape[0]} "
                            "reproduced", "the recording is incomplete (dropped items or a later part)")
        same = (np.all(y_rec == y_rep, axis=1) if y_rec.size else np.ones(0, bool)) \
            & (f_rec == f_rep) & (t_rec == t_rep)
        ok = ~timing[keep]
        out[topic] = {"published": int(keep.sum()), "stale": int(stale.sum()), "timing": int(timing.sum()),
                      "compared": int(ok.sum()), "equal": int(same[ok].sum()),
                      "max_abs_diff": float(np.abs(y_rec[ok] - y_rep[ok]).max()) if ok.any() else 0.0}
    return out
