"""The busiest routes skip Starlette's router (lkps.hot_routes) but answer exactly as the routed app would."""

from __future__ import annotations

import httpx
import pytest
from service_helpers import gateway_headers, new_agent_id, running_app
from starlette.datastructures import Headers

from lkps.app import create_app
from lkps.hot_routes import HotRoutes
from lkps.identity import Endpoint, Identity
from lkps.settings import Settings


class FailingIdentity:
    """An identity resolver with a bug in it: what any unexpected error in a handler looks like."""

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        raise RuntimeError("bug: secret-looking detail that must not reach the caller")

    async def aclose(self) -> None:
        return None


HOT_PATHS = ("/api/agent/register", "/api/session/start", "/livekit/webhook")


def test_the_api_post_routes_and_only_they_are_dispatched_ahead_of_the_router(settings: Settings) -> None:
    app = create_app(settings)
    (hot,) = [m for m in app.user_middleware if m.cls is HotRoutes]
    assert sorted(hot.kwargs["routes"]) == sorted(HOT_PATHS)


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
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "unexpected server error; it has been logged",
    }
    assert "secret" not in response.text


async def test_a_caller_that_hangs_up_mid_body_gets_no_answer_and_no_error(settings: Settings) -> None:
    sent: list[dict[str, object]] = []
    messages = [
        {"type": "http.request", "body": b'{"service_config":', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in gateway_headers(client_id=new_agent_id()).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/agent/register",
        "raw_path": b"/api/agent/register",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    async with running_app(settings) as app:
        await app.app(scope, receive, send)  # type: ignore[arg-type]
        registered = app.handlers.audit.pending + app.handlers.audit.written
    assert sent == []
    assert messages == []
    assert registered == 0
