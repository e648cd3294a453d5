"""The OTLP collector stand-in's routes."""

from __future__ import annotations

from aiohttp import web

from .models import SpanStore
from .responses import OtlpResponses


def build_app(store: SpanStore) -> web.Application:
    responses = OtlpResponses(store)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/traces", responses.export)
    app.router.add_get("/_standin/spans", responses.list_spans)
    app.router.add_post("/_standin/clear", responses.clear)
    return app
