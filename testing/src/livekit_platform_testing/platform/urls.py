"""The platform stand-in's routes."""

from __future__ import annotations

from aiohttp import web

from ..entra import EntraStandIn
from .models import PlatformBackend
from .responses import PlatformResponses


def build_app(backend: PlatformBackend, entra: EntraStandIn) -> web.Application:
    app = web.Application()
    app.router.add_post("/api/agent/register", PlatformResponses(backend, entra).register)
    return app
