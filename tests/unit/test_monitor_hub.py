"""The monitor's hub and server on their own: frames of every kind in, page updates out.

The server test runs the real aiohttp server on a free loopback port and connects real
websocket clients (from its own origin, and from a foreign one, which is refused).
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading

import numpy as np
import pytest

from rtdecode.errors import ConfigError
from rtdecode.monitor.hub import Hub
from rtdecode.sinks.protocol import HEADER_FORMAT, MAGIC, EstimateEncoder, encode_status
from rtdecode.types import Flags


def _clock() -> float:
    return 100.0


def test_hub_thins_points_keeps_flags_and_shows_unknown_kinds() -> None:
    hub = Hub(_clock, max_points=10)
    enc = EstimateEncoder("dec", 2)
    for i in range(100):
        flags = int(Flags.GAP) if i == 55 else 0
        hub.feed(bytes(enc.encode(i if i < 90 else i + 3, flags, 99.0 + i * 0.001, 99.5, np.array([i, -i]))))
    hub.feed(encode_status("_status", 0, 99.9, {"state": "running", "decoders": []}))
    head = struct.pack(HEADER_FORMAT, MAGIC, 1, 9, 0, 4, 0, float("nan"), 99.9)
    hub.feed(b"tms\x00" + head + b"\x01\x02")  # a kind this version does not know
    hub.feed(b"garbage")
    u = hub.update()
    tr = u["traces"]["dec"]
    assert len(tr["t"]) == 10 and tr["received"] == 100 and tr["lost"] == 3
    assert tr["y"][0] == [0.0, -0.0] and tr["y"][-1] == [99.0, -99.0]
    assert sum(f & Flags.GAP for f in tr["flags"]) == Flags.GAP  # the GAP row's stretch keeps its flag
    assert tr["age_ms"]["last"] == pytest.approx(1000 * (100.0 - 99.099), abs=1e-3)
    assert u["status"]["state"] == "running"
    assert u["events"] == [{"topic": "tms", "kind": 9, "seq": 0, "flags": 0, "flag_names": ["OK"],
                            "t_source": None, "t_publish": 99.9, "size": 2}]
    assert u["malformed"] == 1
    json.dumps(u, allow_nan=False)  # what the page gets is strict JSON
    u2 = hub.update()  # only what is new
    assert u2["traces"]["dec"]["t"] == [] and u2["status"] is None and u2["events"] == []
    assert hub.hello()["events"][0]["topic"] == "tms"


def test_server_binds_loopback_only() -> None:
    pytest.importorskip("aiohttp")
    from rtdecode.monitor.server import MonitorServer

    with pytest.raises(ConfigError, match="loopback"):
        MonitorServer(Hub(_clock), host="0.0.0.0")


def test_server_streams_updates_to_its_own_page_and_refuses_other_origins() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    from rtdecode.monitor.server import MonitorServer

    hub = Hub(_clock)
    server = MonitorServer(hub, port=0, period_s=0.05, info={"endpoint": "ipc://x"})
    stop = threading.Event()
    urls: list[str] = []
    enc = EstimateEncoder("dec", 1)

    async def client() -> tuple[list[dict], int, str]:
        while not urls:
            await asyncio.sleep(0.01)
        url = urls[0]
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                page = await r.text()
            async with s.get(url + "static/monitor.js") as r:
                assert r.status == 200 and "WebSocket" in await r.text()
            try:
                await s.ws_connect(url + "ws", headers={"Origin": "http://evil.example"})
                refused = 0
            except aiohttp.WSServerHandshakeError as exc:
                refused = exc.status
            got = []
            async with s.ws_connect(url + "ws", headers={"Origin": url.rstrip("/")}) as ws:
                for i in range(3):
                    hub.feed(bytes(enc.encode(i, 0, 99.0, 99.0, np.array([i]))))
                    got.append(json.loads((await ws.receive()).data))
                while sum(len(m.get("traces", {}).get("dec", {}).get("t", [])) for m in got) < 3:
                    got.append(json.loads((await ws.receive(timeout=10)).data))
        stop.set()
        return got, refused, page

    async def main() -> tuple[list[dict], int, str]:
        task = asyncio.ensure_future(client())
        await server.serve(stop, on_ready=urls.append)
        return await task

    got, refused, page = asyncio.run(main())
    assert "rtdecode monitor" in page and refused == 403
    assert got[0]["type"] == "hello" and got[0]["info"]["endpoint"] == "ipc://x"
    values = [y[0] for m in got if m["type"] == "update" for y in m["traces"].get("dec", {}).get("y", [])]
    assert values == [0.0, 1.0, 2.0]
