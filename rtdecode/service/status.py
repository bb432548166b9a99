"""The daemon's status message (topic ``_status``, every ``sink.heartbeat_s``) and stats line.

The status is the daemon's health for ``rtdecode check`` and monitors: its state and a one-line
reason, input counters, what was published, the age of what was published, each decoder's and
the fusion's health, each plug-in's part, memory and per-stage timings. Field list:
docs/configuration.md (``[sink]``) and docs/reliability.md.
"""

from __future__ import annotations

import math
import os
import resource
from typing import TYPE_CHECKING, Any

from rtdecode import __version__
from rtdecode.runtime.engine_cache import build_phase

if TYPE_CHECKING:
    from rtdecode.service.daemon import Daemon

__all__ = ["reason", "rss_mb", "stats_line", "status_message"]


def rss_mb() -> float:
    """Resident memory of this process, MB (Linux /proc, else peak RSS)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _ms(summary: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if not math.isfinite(v) else round(v, 4)) for k, v in summary.items()}


def status_message(d: Daemon, now: float) -> dict[str, Any]:
    """The status message's JSON content."""
    pipe, watch, out = d.pipeline, d.watch, d.outbox
    src = d.cfg.source
    return {
        "state": d.state, "reason": reason(d, now), "phase": build_phase(d.phase),
        "version": __version__, "pid": os.getpid(),
        "uptime_s": round(now - d.t_start, 3) if d.t_start else 0.0,
        "source": src.name or src.type or src.source_id,
        "input": d.inlet.counters(),
        "bad_input_samples": pipe.bad_samples if pipe else 0,
        "out_of_range_samples": pipe.out_of_range_samples if pipe else 0,
        "messages_out": out.fresh, "stale_messages": out.safe,
        "stale_episodes": watch.episodes, "stale_for_s": round(watch.silent_for(now), 3),
        "last_outage": watch.last_outage, "old_samples_dropped": watch.old_dropped,
        "send_dropped": d.publisher.dropped, "sink": d.publisher.status(),
        "latency_ms": _ms(out.latency.summary_ms()),
        "decoders": pipe.describe() if pipe else [],
        "fusion": d.fusion.status() if d.fusion is not None else None,
        "behind": d.backlog.status(out.late),
        **{p.name: p.status() for p in d.plugins},
        "rss_mb": round(rss_mb(), 1),
        "stages_ms": d.timer.summary_ms(),
    }


def reason(d: Daemon, now: float) -> str:
    """One line for ``rtdecode check``: why the state is what it is."""
    if d.state == "stale":
        src = d.cfg.source
        why = (f"no input from {src.name or src.type or src.source_id} for "
               f"{d.watch.silent_for(now):.1f} s (episode {d.watch.episodes}); publishing "
               f"'{d.cfg.service.safe_value}' safe values flagged STALE")
        if d.inlet.last_rejection:
            why += f"; refused a new outlet: {d.inlet.last_rejection}"
        return why
    if d.state == "behind":
        b = d.backlog
        return (f"behind the input: samples wait {b.queued_s * 1e3:.1f} ms before decoding (budget "
                f"{b.budget_s * 1e3:.1f} ms), {b.waiting} samples waiting; on_behind = {b.policy}, "
                f"{b.samples_skipped} skipped, {d.outbox.late} late messages")
    if d.state == "starting":
        return build_phase(d.phase)
    if d.state in ("stopping", "stopped"):
        return "daemon is shutting down"
    failing = [x.name for x in d.pipeline.decoders if x.failing] if d.pipeline else []
    if failing:
        return f"decoding; failing decoders (DEGRADED output): {', '.join(failing)}"
    return "decoding"


def stats_line(d: Daemon, rate_in_hz: float, cpu_fraction: float) -> str:
    """The periodic log line: input rate, messages, gaps, age percentiles, CPU, memory."""
    lat = d.outbox.window(restart=True).summary_ms()
    c = d.inlet.counters()
    behind = (f"BEHIND (oldest waits {d.backlog.queued_s * 1e3:.0f} ms, {d.backlog.waiting} more) | "
              if d.backlog.behind else "")
    return (f"{behind}in {rate_in_hz:.1f} Hz | out {d.outbox.fresh} msg, {d.outbox.late} late | "
            f"gaps {c['gaps']} lost "
            f"{c['index_lost'] + c['missing_samples']} | age p50 {lat['p50']:.2f} p99 {lat['p99']:.2f} "
            f"max {lat['max']:.2f} ms | cpu {100 * cpu_fraction:.0f}% | rss {rss_mb():.0f} MB")
