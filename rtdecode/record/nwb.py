"""Export a recorded session to NWB (pynwb) for archiving.

Mapping (the HDF5 session keeps more: chunking, raw payloads; see docs/recording.md):

- ``acquisition/input``: :class:`pynwb.TimeSeries` of every input sample (stream units), with
  its LSL timestamps (s, relative to ``timestamps_reference_time`` = the session's creation).
- ``processing/rtdecode/<topic>``: one TimeSeries per estimate topic, the published values
  at their ``t_source``; ``<topic>_flags`` (uint32 flag words) and ``<topic>_t_publish``
  beside it, so age and quality stay with the values.
- events table ``status``: the status JSON messages (``annotation``) at their publish time;
  events table ``frames``: frames of other kinds (pulse events), their topic, kind, seq, flags
  and payload (hex), at their ``t_source``.
- ``notes``: the daemon's config (JSON); ``source_script``: the models' metadata and SHA-256.

Times in the file are seconds from the first input sample (the LSL time of that sample is
in the description of ``input``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rtdecode.errors import DataError
from rtdecode.record.reader import Session
from rtdecode.sinks.protocol import KIND_ESTIMATE, KIND_STATUS

logger = logging.getLogger(__name__)


def export_nwb(session: Session, path: str | Path) -> Path:
    """Write ``session`` as an NWB file at ``path``; returns the path."""
    try:
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    except ModuleNotFoundError as exc:
        raise DataError("NWB export needs pynwb", "pip install 'rtdecode[nwb]'") from exc
    if session.samples.shape[0] == 0:
        raise DataError(f"session {session.paths[0]} has no input samples", "export a session with input")
    created = datetime.strptime(str(session.attrs["created_utc"]), "%Y-%m-%dT%H:%M:%SZ")
    t0 = float(session.t_lsl[0])
    st = session.stream
    nwb = NWBFile(session_description=f"rtdecode session on LSL stream {st.get('name')!r}",
                  identifier=str(session.attrs["session_id"]),
                  session_start_time=created.replace(tzinfo=timezone.utc),
                  notes=json.dumps(session.config), source_script=json.dumps(session.models),
                  source_script_file_name="rtdecode")
    nwb.add_acquisition(TimeSeries(
        name="input", data=session.samples, timestamps=session.t_lsl - t0, unit="stream units",
        description=f"{st.get('n_channels')} ch @ {st.get('rate_hz')} Hz nominal, type {st.get('type')}, "
                    f"channels {st.get('channel_names')}; first sample at LSL time {t0!r} s",
        comments="samples as served to the decoders (after the input checks)"))
    mod = nwb.create_processing_module("rtdecode", "estimates and status published by the daemon")
    for topic in session.estimate_topics():
        e = session.estimates(topic)
        t = e["t_source"] - t0
        mod.add(TimeSeries(name=topic, data=e["values"], timestamps=t, unit="model output units",
                           description=f"estimates on topic {topic!r} at the time of the newest input "
                                       "sample they depend on"))
        mod.add(TimeSeries(name=f"{topic}_flags", data=e["flags"].astype(np.uint32), timestamps=t,
                           unit="bits",
                           description="rtdecode Flags word per estimate (docs/protocol.md)"))
        mod.add(TimeSeries(name=f"{topic}_t_publish", data=e["t_publish"] - t0, timestamps=t, unit="s",
                           description="publish time of each estimate (relative like the timestamps)"))
    _add_events(nwb, session, t0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    logger.info("wrote %s", path)
    return path


def _add_events(nwb: object, session: Session, t0: float) -> None:
    """Status messages and frames of other kinds as NWB events tables."""
    from pynwb.event import EventsTable

    idx = session.index
    status = session.topic_rows("_status", KIND_STATUS)
    if status.size:
        tab = EventsTable(name="status", description="rtdecode status messages (JSON) at their publish time",
                          source_description="rtdecode daemon")
        for i in status:
            tab.add_event(timestamp=float(idx["t_publish"][i] - t0),
                          annotation=session.payload_of(int(i)).decode("utf-8"))
        nwb.add_events_table(tab)  # type: ignore[attr-defined]
    other = np.flatnonzero((idx["kind"] != KIND_ESTIMATE) & (idx["kind"] != KIND_STATUS))
    if other.size:
        tab = EventsTable(name="frames", description="published frames of other kinds (e.g. pulse "
                          "events, docs/protocol.md) at their t_source; payload as hex",
                          source_description="rtdecode daemon")
        for col in ("topic", "kind", "seq", "flags"):
            tab.add_column(name=col, description=f"wire header field {col}")
        for i in other:
            t = float(idx["t_source"][i])
            tab.add_event(timestamp=(t if np.isfinite(t) else float(idx["t_publish"][i])) - t0,
                          annotation=session.payload_of(int(i)).hex(), topic=session.topics[idx["topic"][i]],
                          kind=int(idx["kind"][i]), seq=int(idx["seq"][i]), flags=int(idx["flags"][i]))
        nwb.add_events_table(tab)  # type: ignore[attr-defined]
