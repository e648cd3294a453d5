"""Server spans go to an OTLP collector only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, without tokens."""

from __future__ import annotations

from typing import cast

import pytest

from livekit_platform_testing.otlp import OtlpStandIn
from lkps.app import create_app
from lkps.observability.metrics import RequestMetrics
from lkps.observability.tracing import TracingMiddleware
from lkps.settings import Settings
from lkps.speedups.hot_routes import HotRoutes
from tests.support.service import StaticAuthorizer, gateway_headers, new_agent_id, running_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_each_request_is_a_server_span_continuing_the_callers_trace(
    settings: Settings, otlp_collector: OtlpStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OTLP exporter reads the standard variables itself; the settings decide whether it runs.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_collector.url)
    traced = settings.model_copy(update={"otlp_endpoint": otlp_collector.url})
    headers = gateway_headers(client_id=new_agent_id())
    headers["traceparent"] = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    async with running_app(traced) as app:
        response = await app.client.post("/api/agent/register", json={}, headers=headers)
        await app.client.get("/nowhere")
    spans = otlp_collector.wait_for_spans(lambda s: len(s) >= 2)

    register = next(s for s in spans if s.name == "POST /api/agent/register")
    assert register.kind == 2  # SERVER
    assert register.trace_id == TRACE_ID
    assert register.parent_span_id == "00f067aa0ba902b7"
    assert register.attributes["http.response.status_code"] == 200
    assert register.attributes["http.route"] == "/api/agent/register"
    assert register.resource["service.name"] == "lkps"
    assert any(s.name == "GET unmatched" for s in spans)
    token = response.json()["livekit_token"]
    assert all(token not in repr(s) for s in spans)


async def test_tracing_middleware_is_installed_only_with_an_endpoint(settings: Settings) -> None:
    assert settings.otlp_endpoint is None
    plain = create_app(settings, authorizer=StaticAuthorizer())
    traced = create_app(
        settings.model_copy(update={"otlp_endpoint": "http://127.0.0.1:4318"}), authorizer=StaticAuthorizer()
    )
    # HotRoutes (speedup routes: the busiest routes' dispatch) sits inside tracing, so those requests are
    # spans too.
    # RequestMetrics (LKPS_METRICS, on by default) times what HotRoutes does not answer (HotRoutes times its
    # own requests), so it sits inside HotRoutes.
    hot = [cast(object, HotRoutes)] if "routes" in settings.speedups else []
    timed = [*hot, cast(object, RequestMetrics)]
    assert [m.cls for m in plain.user_middleware] == timed
    assert [m.cls for m in traced.user_middleware] == [cast(object, TracingMiddleware), *timed]
