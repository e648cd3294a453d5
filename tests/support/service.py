"""Helpers for the platform service tests: settings, the app under test, signed webhooks, row queries."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from google.protobuf import json_format
from livekit import api
from livekit.protocol.webhook import WebhookEvent
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from demo.processes import free_port
from livekit_platform_testing.tenant import App
from lkps.api.connections import ConnectionLimits
from lkps.app import Services, create_app, server_config
from lkps.auth.webhooks import WebhookVerifier
from lkps.settings import Settings
from lkps.speedups.webhooks import FastWebhookVerifier
from lkps.storage import migrate
from tests.support.postgres import PostgresCluster

API_KEY = "APIlkpsTestKey"
API_SECRET = "lkps-test-secret-" + "s" * 40
# The platform's agent key (LKPS_AGENT_TOKEN_*): agent tokens are signed with it, LiveKit does not know it.
AGENT_KEY_ID = "lkps-agent"
AGENT_SECRET = "lkps-agent-test-secret-" + "a" * 40
TABLES = (
    "sessions",
    "agent_registrations",
    "agents",
    "webhook_events",
    "worker_connections",
    "job_assignments",
)


def service_env(livekit_url: str, database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "LKPS_AGENT_TOKEN_SECRET": AGENT_SECRET,
        "LKPS_DATABASE_URL": database_url,
        "LKPS_IDENTITY_MODE": "gateway",
    }
    env.update(overrides)
    return env


class StaticAuthorizer:
    """A ``ClientAuthorizer`` with fixed answers (the Graph-backed one is tested against the stand-in)."""

    def __init__(
        self, allowed: set[tuple[str, str]] | None = None, *, error: Exception | None = None
    ) -> None:
        self.allowed = allowed or set()
        self.error = error
        self.calls: list[tuple[str, str]] = []

    async def is_authorized(self, agent_app_id: str, client_app_id: str) -> bool:
        self.calls.append((agent_app_id, client_app_id))
        if self.error is not None:
            raise self.error
        return (agent_app_id, client_app_id) in self.allowed

    def denial_reason(self, agent_app_id: str, client_app_id: str) -> str:
        return f"client {client_app_id} is not pre-authorized for agent {agent_app_id} (fixed answer)"

    async def aclose(self) -> None:
        return None


@dataclass
class Running:
    app: Starlette
    client: httpx.AsyncClient
    services: Services
    settings: Settings
    url: str = "http://lkps"

    async def register(self, agent_id: str, *, enforce: bool | None = None) -> httpx.Response:
        body: dict[str, Any] = {}
        if enforce is not None:
            body["service_config"] = {"enforce_client_authz": enforce}
        return await self.client.post(
            "/api/agent/register", json=body, headers=gateway_headers(client_id=agent_id)
        )

    async def start_session(
        self,
        agent_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"agent_entra_app_id": agent_id}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return await self.client.post(
            "/api/session/start",
            json=body,
            headers=dict(headers if headers is not None else client_headers()),
        )

    async def webhook(self, message: WebhookEvent, **sign: str) -> httpx.Response:
        """``message`` delivered as LiveKit does: signed (``sign``: :func:`sign_webhook`'s options)."""
        body, auth = sign_webhook(message, **sign)
        return await self.client.post(
            "/livekit/webhook",
            content=body,
            headers={"Authorization": auth, "Content-Type": "application/webhook+json"},
        )


@contextlib.asynccontextmanager
async def running_app(settings: Settings, **seams: Any) -> AsyncIterator[Running]:
    """The app with its lifespan running, reached in-process through httpx's ASGI transport."""
    seams.setdefault("authorizer", StaticAuthorizer())
    app = create_app(settings, **seams)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lkps") as client:
            yield Running(app, client, app.state.services, settings)


@dataclass
class Served:
    """The app behind a real uvicorn server on a loopback port."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    services: Services = field(init=False)


@contextlib.asynccontextmanager
async def served_app(
    settings: Settings,
    *,
    port: int | None = None,
    http: type[asyncio.Protocol] | None = None,
    **seams: Any,
) -> AsyncIterator[Served]:
    """The app on ``lkps serve``'s uvicorn configuration for ``settings`` (its speedups); ``http``: another
    HTTP protocol class."""
    seams.setdefault("authorizer", StaticAuthorizer())
    app = create_app(settings, **seams)
    port = port or free_port()
    limits = ConnectionLimits.of(settings)
    config = server_config(app, "127.0.0.1", port, settings.speedups, limits, app.state.services.refusals)
    if http is not None:
        config.http = http
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.02)
    served = Served(f"http://127.0.0.1:{port}", server, task)
    served.services = app.state.services
    try:
        yield served
    finally:
        server.should_exit = True
        await task


AGENT_ID = "0f6a3c1e-7d7b-4a8e-9a59-1c2d3e4f5a6b"
CLIENT_ID = "5b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"


def gateway_headers(
    *,
    client_id: str | None = CLIENT_ID,
    user_id: str | None = "7e1d2c3b-4a59-4867-9a8b-c7d6e5f4a3b2",
    email: str | None = "jane.doe@example.com",
    profile: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if client_id is not None:
        headers["client-id"] = client_id
    if user_id is not None:
        headers["user-id"] = user_id
    if email is not None:
        headers["x-user-email"] = email
    if profile is not None:
        headers["user-profile"] = json.dumps(profile)
    return headers


def client_headers(**overrides: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "profile": {"displayName": "Jane Doe", "email": "jane.doe@example.com", "cwid": "JDOE1"},
    }
    args.update(overrides)
    return gateway_headers(**args)


def new_agent_id() -> str:
    return str(uuid.uuid4())


def sign_webhook(
    event: WebhookEvent, *, api_key: str = API_KEY, api_secret: str = API_SECRET
) -> tuple[str, str]:
    """The body and ``Authorization`` LiveKit sends: a raw JWT whose ``sha256`` claim hashes the body."""
    body = json_format.MessageToJson(event, indent=None)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(api_key, api_secret).with_sha256(digest).to_jwt()
    return body, token


def assert_fast_webhooks(services: Services, at_least: int) -> None:
    """Deliveries signed as LiveKit signs them: with speedup ``webhooks`` all took its fast path (at least
    ``at_least`` of them; none needed livekit-api's ``WebhookReceiver``), without it the plain verifier
    (``WebhookReceiver`` itself) verified them."""
    verifier = services.webhook_verifier
    if "webhooks" in services.settings.speedups:
        assert isinstance(verifier, FastWebhookVerifier)
        assert verifier.fast >= at_least
        assert verifier.deferred == 0
    else:
        assert type(verifier) is WebhookVerifier


def migrated_database(postgres: PostgresCluster, name: str) -> str:
    """A new database ``name`` migrated to head; its URL."""
    url = postgres.create_database(name)
    migrate.upgrade(url)
    return url


async def emptied(url: str) -> str:
    """``url`` after emptying every table the service writes."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
    await engine.dispose()
    return url


async def fetch_rows(url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(query), params)
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Parties:
    """Who calls the service in the entra-mode tests (apps of the ``tenant`` fixture): an agent, a client
    pre-authorized for it, and a stranger holding the session role without that pre-authorization."""

    agent: App
    client: App
    stranger: App
