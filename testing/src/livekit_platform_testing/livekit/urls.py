"""The LiveKit stand-in's routes: which handler answers which path."""

from __future__ import annotations

from aiohttp import web

from .agent_socket import AgentSocket
from .models import LiveKitBackend
from .responses import LiveKitResponses


def build_app(backend: LiveKitBackend) -> web.Application:
    responses = LiveKitResponses(backend)
    app = web.Application()
    app.router.add_get("/", responses.health)
    app.router.add_get("/agent", AgentSocket(backend).handle)
    app.router.add_route("*", "/rtc", responses.no_media)
    app.router.add_route("*", "/rtc/{tail:.*}", responses.no_media)
    app.router.add_route("*", "/twirp/{tail:.*}", responses.no_media)
    app.router.add_get("/_standin/state", responses.state)
    app.router.add_post("/_standin/join", responses.join)
    app.router.add_post("/_standin/leave", responses.leave)
    app.router.add_post("/_standin/drop-workers", responses.drop_workers)
    app.router.add_post("/_standin/jobs/{job_id}/terminate", responses.terminate)
    return app
