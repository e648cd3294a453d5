"""Requests off the API's paths and methods, errors and hang-ups are answered alike whether the API's POST
routes go through Starlette's router (the plain path) or skip it (speedup ``routes``)."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from starlette.datastructures import Headers

from lkps.app import create_app
from lkps.auth.identity import Endpoint, Identity
from lkps.settings import Settings
from lkps.speedups.hot_routes import HotRoutes
from tests.support.service import gateway_headers, new_agent_id, running_app, served_app


class FailingIdentity:
    """An identity resolver with a bug in it: what any unexpected error in a handler looks like."""

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        raise RuntimeError("bug: secret-looking detail that must not reach the caller")

    async def aclose(self) -> None:
        return None


HOT_PATHS = ("/api/agent/register", "/api/session/start", "/livekit/webhook")


def test_the_api_post_routes_and_only_they_are_dispatched_ahead_of_the_router(settings: Settings) -> None:
    app = create_app(settings)
    hot = [m for m in app.user_middleware if m.cls is HotRoutes]
    if "routes" not in settings.speedups:
        assert hot == []  # the plain path: Starlette's router for every request
        return
    (dispatch,) = hot
    assert sorted(dispatch.kwargs["routes"]) == sorted(HOT_PATHS)


@pytest.mark.parametrize("path", HOT_PATHS)
async def test_other_methods_on_a_hot_path_get_starlettes_405(settings: Settings, path: str) -> None:
    async with running_app(settings) as app:
        response = await app.client.get(path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_near_misses_of_a_hot_path_are_left_to_starlette(settings: Settings) -> None:
    async with running_app(settings) as app:
        slash = await app.client.post("/api/agent/register/", json={})
        other = await app.client.post("/api/agent/registerx", json={})
    # Starlette redirects a trailing slash to the route; an unknown path is not found.
    assert slash.status_code == 307
    assert slash.headers["location"] == "http://lkps/api/agent/register"
    assert other.status_code == 404


async def test_errors_on_a_hot_path_keep_the_api_shape_and_headers(settings: Settings) -> None:
    async with running_app(settings) as app:
        unsigned = await app.client.post("/livekit/webhook", content=b"{}")
        bad_json = await app.client.post(
            "/api/agent/register", content=b"{", headers=gateway_headers(client_id=new_agent_id())
        )
    assert unsigned.status_code == 401
    assert unsigned.headers["www-authenticate"] == "Bearer"
    assert unsigned.headers["content-type"] == "application/json"
    assert unsigned.json()["field"] == "Authorization"
    assert bad_json.status_code == 400
    assert set(bad_json.json()) == {"error", "detail", "field"}


async def test_an_unexpected_error_is_a_bare_500_and_reaches_the_server_log(settings: Settings) -> None:
    async with running_app(settings, identity=FailingIdentity()) as app:
        # Starlette's ServerErrorMiddleware answers, then re-raises for the server (uvicorn logs it).
        transport = httpx.ASGITransport(app=app.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://lkps") as client:
            response = await client.post(
                "/api/agent/register", json={}, headers=gateway_headers(client_id=new_agent_id())
            )
        with pytest.raises(RuntimeError, match="bug"):
            await app.client.post(
                "/api/agent/register", json={}, headers=gateway_headers(client_id=new_agent_id())
            )
        # both timed as 500s, on both dispatch paths
        timed = app.services.metrics.request_durations("/api/agent/register", "POST", 500)
    assert sum(timed.counts) == 2
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "unexpected server error; it has been logged",
    }
    assert "secret" not in response.text


async def test_a_caller_that_hangs_up_mid_body_gets_no_answer_and_logs_no_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    headers = "".join(f"{k}: {v}\r\n" for k, v in gateway_headers(client_id=new_agent_id()).items())
    partial = (
        f"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\ncontent-length: 100\r\n{headers}\r\n"
        '{"service_config":'
    ).encode()
    async with served_app(settings) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with caplog.at_level(logging.WARNING):
            received = await asyncio.to_thread(_hang_up_mid_body, port, partial)
            # the service still answers others
            async with httpx.AsyncClient(base_url=served.url) as client:
                after = await client.get("/openapi.json")
        registered = served.services.audit.pending + served.services.audit.written
    assert received == b""
    assert after.status_code == 200
    assert registered == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def _hang_up_mid_body(port: int, partial: bytes) -> bytes:
    """Send ``partial`` (a request cut short of its declared body), wait a moment, hang up; what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(partial)
        sock.settimeout(0.5)
        try:
            received = sock.recv(65536)
        except TimeoutError:
            received = b""
    return received
