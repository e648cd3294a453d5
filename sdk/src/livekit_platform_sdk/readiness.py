"""Readiness endpoint: ``GET /ready`` is 200 only while the worker is registered on a valid platform token.

Liveness stays on livekit-agents' own health server (``:8081/``), which answers 200 before registration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

logger = logging.getLogger("livekit_platform_sdk")


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


class ReadinessServer:
    """Serves ``/ready`` from ``check()``; port 0 binds a free port (see ``.port`` after ``start()``)."""

    def __init__(self, check: Callable[[], Readiness], *, host: str, port: int) -> None:
        self._check = check
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ready", self._ready)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the asyncio server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self._port = int(sockets[0].getsockname()[1])
        logger.info("readiness endpoint listening", extra={"host": self._host, "port": self._port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _ready(self, request: web.Request) -> web.Response:
        state = self._check()
        body = json.dumps({"ready": state.ready, "reason": state.reason})
        return web.Response(text=body, status=200 if state.ready else 503, content_type="application/json")
