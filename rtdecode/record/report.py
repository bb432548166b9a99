"""``rtdecode report SESSION.h5``: what a session published, and how well, in numbers and plots.

Writes into a folder: ``summary.json`` (counts, flags, sample-age percentiles, per-stage
timing from the last status, STALE / DEGRADED episodes, recorder drops), ``report.md``
(the same as text, with the plots) and three plots — outputs over time with flagged
stretches shaded, the sample-age histogram, per-stage timing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtdecode.record.reader import Session
from rtdecode.types import Flags

logger = logging.getLogger(__name__)

#: Shading of flagged stretches, by the first flag that is set (in this order).
SHADES = ((Flags.STALE, "#9ca3af", "STALE"), (Flags.DEGRADED, "#f87171", "DEGRADED"),
          (Flags.WARMUP, "#fde68a", "WARMUP"), (Flags.GAP | Flags.BAD_INPUT | Flags.CLAMPED, "#fdba74",
                                                 "GAP / BAD_INPUT / CLAMPED"))


def episodes(flags: np.ndarray, t: np.ndarray, bit: int) -> list[dict[str, float]]:
    """Runs of consecutive rows with ``bit`` set: start, end (s, times ``t``) and rows."""
    on = (flags & bit) != 0
    if not on.any():
        return []
    edges = np.diff(np.r_[0, on.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [{"start_s": round(float(t[a]), 4), "end_s": round(float(t[b]), 4), "rows": int(b - a + 1)}
            for a, b in zip(starts, ends, strict=True)]


def _pct_ms(x: np.ndarray) -> dict[str, float] | None:
    if x.size == 0:
        return None
    q = np.percentile(x, [50, 90, 99, 99.9]) * 1e3
    return {"p50": round(float(q[0]), 4), "p90": round(float(q[1]), 4), "p99": round(float(q[2]), 4),
            "p999": round(float(q[3]), 4), "max": round(float(x.max() * 1e3), 4), "n": int(x.size)}


def summarize(session: Session) -> dict[str, Any]:
    """Numbers of the report (JSON-ready)."""
    t0 = float(session.t_lsl[0]) if session.t_lsl.size else float(session.index["t_publish"].min())
    statuses = session.statuses()
    last = statuses[-1] if statuses else {}
    topics = {}
    for topic in session.estimate_topics():
        e = session.estimates(topic)
        f, t = e["flags"], e["t_publish"] - t0
        fresh = (f & Flags.STALE) == 0
        counts = {name: int(((f & m.value) != 0).sum()) for m in Flags if m.value for name in [m.name]}
        topics[topic] = {"messages": int(f.size), "ok": int((f == 0).sum()), "flag_counts": counts,
                         "age_ms": _pct_ms((e["t_publish"] - e["t_source"])[fresh]),
                         "stale_episodes": episodes(f, t, Flags.STALE),
                         "degraded_episodes": episodes(f, t, Flags.DEGRADED)}
    span = float(session.t_lsl[-1] - session.t_lsl[0]) if session.t_lsl.size > 1 else 0.0
    return {"files": [str(p) for p in session.paths], "session_id": session.attrs.get("session_id"),
            "created_utc": session.attrs.get("created_utc"), "stream": session.stream,
            "input": {"samples": int(session.samples.shape[0]), "chunks": int(session.chunks.size),
                      "duration_s": round(span, 3),
                      "chunks_flagged": {n: int(((session.chunks["flags"] & m) != 0).sum())
                                         for n, m in (("GAP", Flags.GAP), ("BAD_INPUT", Flags.BAD_INPUT))},
                      "outages_resumed": int(session.chunks["resumed"].sum())},
            "recorder_dropped": session.dropped, "complete": session.complete,
            "topics": topics, "status_messages": len(statuses),
            "final_status": {k: last.get(k) for k in ("state", "input", "messages_out", "stale_messages",
                                                      "stale_episodes", "send_dropped", "latency_ms")},
            "stages_ms": last.get("stages_ms") or {},
            "models": {k: {"path": v.get("path"), "sha256": v.get("sha256")}
                       for k, v in session.models.items()}}


def _shade(ax: Any, t: np.ndarray, flags: np.ndarray) -> None:
    seen = set()
    for bits, color, label in SHADES:
        hit = (flags & int(bits)) != 0
        for ep in episodes(hit.astype(np.uint32), t, 1):
            ax.axvspan(ep["start_s"], ep["end_s"] + 1e-3, color=color, alpha=0.45, lw=0,
                       label=None if label in seen else label)
            seen.add(label)
        flags = np.where(hit, 0, flags)  # a row is shaded once, by its first flag


def plot(session: Session, summary: dict[str, Any], out: Path) -> list[Path]:
    """Draw the three plots into ``out``; returns their paths."""
    from rtdecode.figures import pyplot, save

    plt = pyplot()
    t0 = float(session.t_lsl[0]) if session.t_lsl.size else 0.0
    topics = list(summary["topics"])
    names = {m["topic"]: [o["name"] for o in m["metadata_json"].get("outputs", [])]
             for m in session.models.values()}
    fig, axes = plt.subplots(max(1, len(topics)), 1, figsize=(10, 2.6 * max(1, len(topics))), squeeze=False)
    for ax, topic in zip(axes[:, 0], topics, strict=False):
        e = session.estimates(topic)
        t = e["t_source"] - t0
        _shade(ax, t, e["flags"])
        for j in range(e["values"].shape[1]):
            lab = names.get(topic, [])[j] if j < len(names.get(topic, [])) else f"y{j}"
            ax.plot(t, e["values"][:, j], lw=0.8, label=lab)
        ax.set_title(f"{topic}: {e['values'].shape[0]} messages")
        ax.set_xlabel("s since the first input sample")
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    paths = [save(fig, out / "outputs.png")]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for topic in topics:
        e = session.estimates(topic)
        age = (e["t_publish"] - e["t_source"])[(e["flags"] & Flags.STALE) == 0] * 1e3
        if age.size:
            ax.hist(age, bins=np.logspace(np.log10(max(age.min(), 1e-3)), np.log10(age.max() + 1e-3), 60),
                    histtype="step", label=topic)
    ax.set_xscale("log")
    ax.set_xlabel("sample age at publish, ms (t_publish − t_source)")
    ax.set_ylabel("messages")
    ax.legend(fontsize=8)
    paths.append(save(fig, out / "age.png"))
    stages = summary["stages_ms"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * max(4, len(stages)) + 1))
    if stages:
        k = list(stages)
        ax.barh(k, [stages[s]["p99"] for s in k], color="#fca5a5", label="p99")
        ax.barh(k, [stages[s]["p50"] for s in k], color="#2563eb", label="p50")
        ax.set_xlabel("ms (last status of the session)")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no stage timing (service.stage_timing off)", ha="center")
    paths.append(save(fig, out / "stages.png"))
    return paths


def write_report(session: Session, out: Path) -> Path:
    """Write ``summary.json``, the plots and ``report.md`` into ``out``; returns the .md path."""
    out.mkdir(parents=True, exist_ok=True)
    s = summarize(session)
    (out / "summary.json").write_text(json.dumps(s, indent=1), encoding="utf-8")
    plot(session, s, out)
    lines = [f"# Session {s['session_id']}", "", f"Files: {', '.join(s['files'])}  ",
             f"Created (UTC): {s['created_utc']}; input {s['stream'].get('name')!r}: "
             f"{s['stream'].get('n_channels')} ch @ {s['stream'].get('rate_hz')} Hz, "
             f"{s['input']['samples']} samples in {s['input']['chunks']} chunks "
             f"({s['input']['duration_s']} s); outages ended: {s['input']['outages_resumed']}  ",
             f"Recorder drops: {s['recorder_dropped']} ({'complete' if s['complete'] else 'INCOMPLETE'})",
             "", "| topic | messages | OK | flags | age p50 / p99 / max (ms) | stale episodes | "
             "degraded episodes |", "|---|---|---|---|---|---|---|"]
    for topic, v in s["topics"].items():
        a = v["age_ms"] or {}
        flags = ", ".join(f"{k} {n}" for k, n in v["flag_counts"].items() if n) or "none"
        lines.append(f"| {topic} | {v['messages']} | {v['ok']} | {flags} | {a.get('p50')} / {a.get('p99')} / "
                     f"{a.get('max')} | {len(v['stale_episodes'])} | {len(v['degraded_episodes'])} |")
    lines += ["", "![outputs](outputs.png)", "", "![sample age](age.png)", "", "![stages](stages.png)", ""]
    md = out / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    logger.info("report written to %s", md)
    return md
