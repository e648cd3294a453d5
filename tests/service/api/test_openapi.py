"""``/openapi.json`` describes the implementation: the same routes, and every documented answer happens.

Each documented (method, path, status) has a scenario below that produces it through the app, and the body
it returns is checked against the documented schema; a route or status added to either side alone fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from livekit_platform_testing.tenant import Tenant
from lkps.api.openapi import document
from lkps.auth.graph import GraphUnavailableError
from lkps.settings import Settings
from tests.support.service import (
    CLIENT_ID,
    Parties,
    StaticAuthorizer,
    client_headers,
    free_port,
    gateway_headers,
    new_agent_id,
    running_app,
    sign_webhook,
)
from tests.support.webhook_events import T0, event, room_name

Scenario = Callable[["Context"], Awaitable[httpx.Response]]


@dataclasses.dataclass
class Context:
    gateway: Settings
    entra: Settings
    tenant: Tenant
    parties: Parties

    async def call(
        self, method: str, path: str, *, settings: Settings | None = None, authorizer: Any = None, **kw: Any
    ) -> httpx.Response:
        async with running_app(settings or self.gateway, authorizer=authorizer or StaticAuthorizer()) as app:
            return await app.client.request(method, path, **kw)

    async def session(self, *, authorizer: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        agent_id = new_agent_id()
        async with running_app(self.gateway, authorizer=authorizer) as app:
            await app.register(agent_id, enforce=authorizer is not None)
            return await app.start_session(agent_id, headers=headers)


BIG = b'{"pad": "' + b"x" * 70_000 + b'"}'
BIG_WEBHOOK = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'  # past the webhook limit, 1 MiB


async def _webhook(ctx: Context, *, tamper: bool = False) -> httpx.Response:
    body, auth = sign_webhook(event("room_started", room_name(new_agent_id()), T0))
    return await ctx.call(
        "POST", "/livekit/webhook", content=body + (" " if tamper else ""), headers={"Authorization": auth}
    )


async def _register_entra(ctx: Context, who: str) -> httpx.Response:
    headers = await ctx.tenant.bearer(getattr(ctx.parties, who))
    return await ctx.call("POST", "/api/agent/register", settings=ctx.entra, json={}, headers=headers)


async def _health_down(ctx: Context) -> httpx.Response:
    down = ctx.gateway.model_copy(update={"livekit_health_url": f"http://127.0.0.1:{free_port()}/"})
    return await ctx.call("GET", "/api/health", settings=down)


async def _keys_unreachable(ctx: Context, path: str) -> httpx.Response:
    settings = ctx.entra.model_copy(update={"entra_authority": f"https://127.0.0.1:{free_port()}"})
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"
    return await ctx.call(
        "POST", path, settings=settings, json={}, headers={"Authorization": f"Bearer {token}"}
    )


async def _webhook_db_down(ctx: Context) -> httpx.Response:
    broken = ctx.gateway.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none", "webhook_write_timeout": 5}
    )
    body, auth = sign_webhook(event("room_started", room_name(new_agent_id()), T0))
    return await ctx.call(
        "POST", "/livekit/webhook", settings=broken, content=body, headers={"Authorization": auth}
    )


ADMIN_ID = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99"


def _admin_settings(ctx: Context, **update: Any) -> Settings:
    return ctx.gateway.model_copy(update={"gateway_admin_client_ids": (ADMIN_ID,), **update})


async def _admin(ctx: Context, path: str, *, client_id: str = ADMIN_ID) -> httpx.Response:
    """An agent registers and starts a session, then ``client_id`` reads the admin view ``path``."""
    agent_id = new_agent_id()
    async with running_app(_admin_settings(ctx), authorizer=StaticAuthorizer()) as app:
        await app.register(agent_id, enforce=False)
        await app.start_session(agent_id)
        await app.services.audit.flush()
        return await app.client.get(path, headers=gateway_headers(client_id=client_id))


async def _admin_db_down(ctx: Context, path: str) -> httpx.Response:
    broken = _admin_settings(ctx, database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    return await ctx.call("GET", path, settings=broken, headers=gateway_headers(client_id=ADMIN_ID))


def _admin_scenarios(path: str) -> dict[tuple[str, str, str], Scenario]:
    return {
        ("get", path, "200"): lambda ctx: _admin(ctx, path),
        ("get", path, "400"): lambda ctx: _admin(ctx, f"{path}?state=nonsense"),
        ("get", path, "401"): lambda ctx: ctx.call("GET", path, settings=ctx.entra),
        ("get", path, "403"): lambda ctx: _admin(ctx, path, client_id=CLIENT_ID),
        ("get", path, "404"): lambda ctx: ctx.call("GET", path, headers=gateway_headers()),
        ("get", path, "503"): lambda ctx: _admin_db_down(ctx, path),
    }


SCENARIOS: dict[tuple[str, str, str], Scenario] = {
    **_admin_scenarios("/api/admin/agents"),
    **_admin_scenarios("/api/admin/sessions"),
    ("get", "/api/health", "200"): lambda ctx: ctx.call("GET", "/api/health"),
    ("get", "/api/health", "503"): _health_down,
    ("post", "/api/agent/register", "200"): lambda ctx: ctx.call(
        "POST", "/api/agent/register", json={}, headers=gateway_headers(client_id=new_agent_id())
    ),
    ("post", "/api/agent/register", "400"): lambda ctx: ctx.call(
        "POST", "/api/agent/register", json={}, headers=gateway_headers(client_id=None)
    ),
    ("post", "/api/agent/register", "401"): lambda ctx: ctx.call(
        "POST", "/api/agent/register", settings=ctx.entra, json={}
    ),
    ("post", "/api/agent/register", "403"): lambda ctx: _register_entra(ctx, "client"),
    ("post", "/api/agent/register", "413"): lambda ctx: ctx.call(
        "POST", "/api/agent/register", content=BIG, headers=gateway_headers(client_id=new_agent_id())
    ),
    ("post", "/api/agent/register", "503"): lambda ctx: _keys_unreachable(ctx, "/api/agent/register"),
    ("post", "/api/session/start", "200"): lambda ctx: ctx.session(authorizer=None),
    ("post", "/api/session/start", "400"): lambda ctx: ctx.call(
        "POST", "/api/session/start", json={"agent_entra_app_id": "nope"}, headers=client_headers()
    ),
    ("post", "/api/session/start", "401"): lambda ctx: ctx.call(
        "POST", "/api/session/start", settings=ctx.entra, json={"agent_entra_app_id": CLIENT_ID}
    ),
    ("post", "/api/session/start", "403"): lambda ctx: ctx.session(authorizer=StaticAuthorizer()),
    ("post", "/api/session/start", "404"): lambda ctx: ctx.call(
        "POST", "/api/session/start", json={"agent_entra_app_id": new_agent_id()}, headers=client_headers()
    ),
    ("post", "/api/session/start", "413"): lambda ctx: ctx.call(
        "POST", "/api/session/start", content=BIG, headers=client_headers()
    ),
    ("post", "/api/session/start", "503"): lambda ctx: ctx.session(
        authorizer=StaticAuthorizer(error=GraphUnavailableError("down"))
    ),
    ("post", "/livekit/webhook", "200"): _webhook,
    ("post", "/livekit/webhook", "401"): lambda ctx: _webhook(ctx, tamper=True),
    ("post", "/livekit/webhook", "413"): lambda ctx: ctx.call(
        "POST", "/livekit/webhook", content=BIG_WEBHOOK
    ),
    ("post", "/livekit/webhook", "503"): _webhook_db_down,
    ("get", "/openapi.json", "200"): lambda ctx: ctx.call("GET", "/openapi.json"),
    ("get", "/metrics", "200"): lambda ctx: ctx.call("GET", "/metrics"),
}


def documented() -> list[tuple[str, str, str]]:
    doc = document()
    return sorted(
        (method, path, status)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    )


def check(schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """The subset of JSON Schema the document uses: $ref, type, const, enum, required, properties."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        check(document()["components"]["schemas"][name], value, where)
        return
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    kind = schema.get("type")
    python: dict[str, tuple[type, ...]] = {
        "object": (dict,),
        "string": (str,),
        "integer": (int,),
        "boolean": (bool,),
        "array": (list,),
        "number": (int, float),
        "null": (type(None),),
    }
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        allowed = tuple(t for k in kinds for t in python[k])
        assert isinstance(value, allowed), f"{where}: {value!r} is not {kind}"
    if "items" in schema and isinstance(value, list):
        for index, item in enumerate(value):
            check(schema["items"], item, f"{where}[{index}]")
    for name in schema.get("required", []):
        assert name in value, f"{where}: missing {name}"
    for name, sub in schema.get("properties", {}).items():
        if isinstance(value, dict) and name in value:
            check(sub, value[name], f"{where}.{name}")


def test_every_route_is_documented_and_every_documented_route_exists(settings: Settings) -> None:
    from lkps.app import create_app

    app = create_app(settings, authorizer=StaticAuthorizer())
    implemented = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set())
        if method != "HEAD"
    }
    described = {(m, p) for m, p, _ in documented()}
    assert implemented == described


def test_every_documented_response_has_a_scenario() -> None:
    assert sorted(SCENARIOS) == documented()


def test_the_served_document_is_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    for _, path, _ in documented():
        assert path.startswith("/")


@pytest.mark.parametrize(("method", "path", "status"), documented())
async def test_documented_response_happens_with_the_documented_body(
    method: str,
    path: str,
    status: str,
    settings: Settings,
    entra_settings: Settings,
    tenant: Tenant,
    parties: Parties,
) -> None:
    response = await SCENARIOS[(method, path, status)](Context(settings, entra_settings, tenant, parties))
    assert response.status_code == int(status), response.text
    content = document()["paths"][path][method]["responses"][status]["content"]
    if "application/json" not in content:  # /metrics: Prometheus' text format
        assert response.headers["content-type"].startswith(next(iter(content)))
        return
    check(content["application/json"]["schema"], response.json())
