"""``rtdecode monitor``: a live page of the daemon's output, served on 127.0.0.1.

A ZeroMQ subscriber like any other (:mod:`rtdecode.monitor.hub`), an aiohttp server with a
websocket (:mod:`rtdecode.monitor.server`) and a page whose HTML, CSS and JavaScript ship in
``rtdecode/monitor/static`` (no CDN). Needs the ``monitor`` extra (aiohttp).
"""
