"""The monitor's web server: the page, its static files and one websocket of JSON updates.

Binds loopback only. Every ``period_s`` the hub's news go to every connected page as one
JSON text message; a page that connects later first gets the latest status, the kept
events and the last ``history_s`` of updates. Websocket connections from pages of other
origins are refused (a web site open in the same browser cannot read the decoder output).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtdecode.errors import ConfigError
from rtdecode.monitor.hub import Hub

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _aiohttp() -> Any:
    try:
        from aiohttp import web
    except ModuleNotFoundError as exc:
        raise ConfigError("rtdecode monitor needs aiohttp", "pip install 'rtdecode[monitor]'") from exc
    return web


class MonitorServer:
    """Serve the monitor page for one :class:`~rtdecode.monitor.hub.Hub`.

    Parameters
    ----------
    hub : Hub
    host : str
        Loopback address to bind (127.0.0.1, ::1 or localhost).
    port : int
        TCP port (0: any free port; :attr:`port` tells which after :meth:`start`).
    period_s : float
        Update period of the pages, s.
    history_s : float
        Updates kept for pages that connect later, s.
    info : dict
        Shown on the page (endpoint, truth stream).
    """

    def __init__(self, hub: Hub, host: str = "127.0.0.1", port: int = 8765, period_s: float = 0.1,
                 history_s: float = 10.0, info: dict[str, Any] | None = None) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ConfigError(f"the monitor binds loopback only; got host {host!r}",
                              "use 127.0.0.1 (open the page on this machine, or tunnel it over ssh)")
        self.hub = hub
        self.host = host
        self.port = port
        self.period_s = period_s
        self.info = info or {}
        self._history: deque[str] = deque(maxlen=max(1, int(history_s / period_s)))
        self._clients: set[Any] = set()
        self._runner: Any = None
        self.pages_served = 0

    @property
    def url(self) -> str:
        """Address of the page."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _app(self) -> Any:
        web = _aiohttp()
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._ws)
        app.router.add_static("/static/", STATIC, show_index=False)
        return app

    async def _index(self, request: Any) -> Any:
        self.pages_served += 1
        return _aiohttp().FileResponse(STATIC / "index.html")

    def _same_origin(self, request: Any) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser (a script on this machine)
            return True
        return origin in {f"http://{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")}

    async def _ws(self, request: Any) -> Any:
        web = _aiohttp()
        if not self._same_origin(request):
            logger.warning("refused a websocket from origin %s", request.headers.get("Origin"))
            return web.Response(status=403, text="other origins may not read the monitor")
        ws = web.WebSocketResponse(heartbeat=10.0)
        await ws.prepare(request)
        await ws.send_str(json.dumps({**self.hub.hello(), "info": self.info}))
        for text in list(self._history):
            await ws.send_str(text)
        self._clients.add(ws)
        try:
            async for _ in ws:  # the page sends nothing; wait for it to go
                pass
        finally:
            self._clients.discard(ws)
        return ws

    async def _broadcast(self, stop: threading.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.period_s)
            text = json.dumps(self.hub.update(), allow_nan=False)
            self._history.append(text)
            for ws in list(self._clients):
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    self._clients.discard(ws)

    async def serve(self, stop: threading.Event, on_ready: Callable[[str], None] | None = None) -> None:
        """Run until ``stop`` is set (on the calling thread's event loop); ``on_ready(url)`` once bound."""
        web = _aiohttp()
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sock = site._server.sockets[0] if site._server is not None else None  # noqa: SLF001
        if sock is not None:
            self.port = int(sock.getsockname()[1])
        if on_ready is not None:
            on_ready(self.url)
        try:
            await self._broadcast(stop)
        finally:
            for ws in list(self._clients):
                await ws.close()
            await self._runner.cleanup()
