"""The HDF5 layout of a session file (schema ``rtdecode-session``, version 1).

One file per part (a session rotates to a new part by size or time). Every dataset is
chunked and resizable along its first axis; the file is written in HDF5 SWMR mode, so
each flush leaves a consistent file that survives ``kill -9`` of the writer.

===============================  ========================  ====================================
path                             dtype / shape             content
===============================  ========================  ====================================
``/`` attrs                      JSON strings, scalars     ``schema``, ``schema_version``,
                                                           ``rtdecode_version``, ``session_id``,
                                                           ``part``, ``created_utc``,
                                                           ``flush_interval_s``, ``config_json``
                                                           (the daemon's whole config),
                                                           ``stream_json`` (input stream facts)
``/models/<decoder>`` attrs      JSON strings              ``metadata_json`` (the model file's
                                                           rtdecode metadata), ``sha256``,
                                                           ``path``, ``topic``
``/input/samples``               float32 (n, C)            every input sample served to the
                                                           decoders, stream units, after the
                                                           input checks (what they got)
``/input/t_lsl``                 float64 (n,)              its LSL time (local clock), s
``/input/chunks``                CHUNK_DTYPE (m,)          how the samples were served: one row
                                                           per pulled chunk
``/messages/index``              MESSAGE_DTYPE (k,)        one row per published frame (any kind)
``/messages/payload``            uint8 (bytes,)            the frames' payloads, back to back
``/messages/topics``             S63 (t,)                  topic names; ``index.topic`` indexes it
``/recorder/drops``              DROP_DTYPE (d,)           cumulative overflow counters, one row
                                                           whenever they changed
===============================  ========================  ====================================

``CHUNK_DTYPE``: ``start`` (first row in ``/input/samples`` of this file), ``n``, ``flags``
(input ``Flags`` the decoders got with it: ``GAP``, ``BAD_INPUT``), ``first_index`` (the
stream's running sample index), ``t_recorded`` (LSL clock when the recorder got it, s),
``resumed`` (1 when the chunk ended a STALE episode: the daemon reset or carried its state
there, per ``service.on_reconnect``).

``MESSAGE_DTYPE``: the wire header (``topic`` index, ``kind``, ``flags``, ``count``, ``seq``,
``t_source``, ``t_publish``; docs/protocol.md), ``t_recorded`` and where its payload is
(``offset``, ``size`` into ``/messages/payload``). Estimates carry ``count`` float32 values,
status frames UTF-8 JSON, kinds added later their own payload, kept byte for byte.
"""

from __future__ import annotations

import numpy as np

SCHEMA = "rtdecode-session"
SCHEMA_VERSION = 1

CHUNK_DTYPE = np.dtype([("start", "<u8"), ("n", "<u4"), ("flags", "<u4"), ("first_index", "<u8"),
                        ("t_recorded", "<f8"), ("resumed", "u1")])
MESSAGE_DTYPE = np.dtype([("topic", "<u2"), ("kind", "<u2"), ("flags", "<u4"), ("count", "<u4"),
                          ("seq", "<u8"), ("t_source", "<f8"), ("t_publish", "<f8"),
                          ("t_recorded", "<f8"), ("offset", "<u8"), ("size", "<u4")])
DROP_DTYPE = np.dtype([("t", "<f8"), ("chunks", "<u8"), ("samples", "<u8"), ("frames", "<u8")])
TOPIC_DTYPE = np.dtype("S63")


def tables(n_channels: int) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every appendable dataset of a part for an input of ``n_channels`` channels."""
    return {
        "input/samples": (np.dtype("<f4"), (n_channels,)),
        "input/t_lsl": (np.dtype("<f8"), ()),
        "input/chunks": (CHUNK_DTYPE, ()),
        "messages/index": (MESSAGE_DTYPE, ()),
        "messages/payload": (np.dtype("u1"), ()),
        "messages/topics": (TOPIC_DTYPE, ()),
        "recorder/drops": (DROP_DTYPE, ()),
    }


def part_name(stem: str, part: int) -> str:
    """File name of part ``part`` of the session ``stem``."""
    return f"{stem}_{part:03d}.h5"
