"""A platform, proxy or authority that echoes the request into its error answer: the bearer token (or client
secret) reaches no exception, log record or span. Real loopback servers, reached through the SDK's real
clients (httpx over aiohttp for the platform, azure-identity for Entra)."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from livekit_platform_sdk.identity import CredentialError, PlatformIdentity
from livekit_platform_sdk.metrics import PlatformMetrics
from livekit_platform_sdk.registration import (
    PlatformClient,
    PlatformUnavailableError,
    RegistrationError,
    RegistrationRefusedError,
)
from livekit_platform_sdk.settings import Settings
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.server import StandInServer
from livekit_platform_testing.tenant import App, Tenant
from tests.support.fakes import VirtualTime


class EchoServer(StandInServer):
    """Answers every request with ``status`` and a body that echoes the request's headers and body, in one of
    the shapes a misbehaving server or proxy uses; keeps what it received and what it answered."""

    def __init__(self, status: int, shape: str, *, tls: EntraStandIn | None = None) -> None:
        super().__init__(ssl_context=tls.tls.server_context() if tls else None)
        self.scheme = "https" if tls else "http"
        self.status = status
        self.shape = shape
        self.received: list[dict[str, Any]] = []
        self.answered: list[str] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._echo)
        return app

    async def _echo(self, request: web.Request) -> web.Response:
        seen = {"method": request.method, "path": request.path_qs, "headers": dict(request.headers)}
        seen["body"] = await request.text()
        self.received.append(seen)
        echo = json.dumps(seen)
        if self.shape == "platform":  # the platform's own error shape, every field carrying the request
            bearer = request.headers.get("Authorization", "")
            detail = f"you sent Authorization: {bearer} in {echo}"
            body = json.dumps({"error": f"forbidden {bearer}", "detail": detail, "field": bearer})
            kind = "application/json"
        elif self.shape == "oauth":  # an authority's error shape, its description carrying the request
            body = json.dumps({"error": "invalid_client", "error_description": f"AADSTS7000215: got {echo}"})
            kind = "application/json"
        elif self.shape == "json":
            body, kind = echo, "application/json"
        elif self.shape == "html":
            body, kind = (
                f"<html><body><h1>Bad gateway</h1><pre>{html.escape(echo)}</pre></body></html>",
                "text/html",
            )
        else:
            headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
            body, kind = f"{request.method} {request.path_qs}\n{headers}\n\n{seen['body']}", "text/plain"
        self.answered.append(body)
        return web.Response(text=body, status=self.status, content_type=kind)


def pieces(token: str) -> list[str]:
    """The token and each part a server might echo alone (a JWT's header, payload, signature)."""
    return [token, *(part for part in token.split(".") if len(part) >= 16)]


def leaks(token: str, *texts: str) -> list[str]:
    return [piece[:12] + "..." for piece in pieces(token) for text in texts if piece in text]


def span_texts(spans: tuple[ReadableSpan, ...]) -> list[str]:
    texts = []
    for span in spans:
        texts += [span.name, str(span.status.description), repr(dict(span.attributes or {}))]
        texts += [f"{event.name} {dict(event.attributes or {})!r}" for event in span.events]
    return texts


def record_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    # the message and every structured field passed in `extra`
    return [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def client_for(
    platform_url: str, entra: EntraStandIn, tenant: Tenant, app: App, exporter: InMemorySpanExporter
) -> PlatformClient:
    settings = Settings(
        platform_url=platform_url,
        scope=tenant.scope,
        azure_client_id=app.app_id,
        azure_client_secret=app.secret,
        azure_tenant_id=entra.tenant_id,
        azure_authority_host=entra.authority_host,
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return PlatformClient(
        settings,
        PlatformIdentity(settings, connection_verify=str(entra.ca_file)),
        timing=VirtualTime().timing(),
        metrics=PlatformMetrics(CollectorRegistry()),
        tracer_provider=provider,
    )


@pytest.mark.parametrize(
    ("status", "shape", "error", "shown"),
    [
        (401, "platform", RegistrationRefusedError, "you sent"),
        (403, "text", RegistrationRefusedError, "bytes (text/plain), not the platform's error shape"),
        (400, "json", RegistrationRefusedError, "not the platform's error shape (not shown)"),
        (502, "html", PlatformUnavailableError, "bytes (text/html)"),
        (503, "platform", PlatformUnavailableError, "you sent"),
        (429, "text", PlatformUnavailableError, "HTTP 429"),
    ],
)
async def test_an_error_answer_echoing_the_request_never_shows_the_entra_token(
    entra_standin: EntraStandIn,
    tenant: Tenant,
    agent_app: App,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    status: int,
    shape: str,
    error: type[RegistrationError],
    shown: str,
) -> None:
    async with EchoServer(status, shape) as echo:
        client = client_for(echo.url, entra_standin, tenant, agent_app, spans)
        try:
            with caplog.at_level(logging.DEBUG), pytest.raises(error) as raised:
                await client.register(max_attempts=3)
        finally:
            await client.aclose()

    bearer = echo.received[0]["headers"]["Authorization"].removeprefix("Bearer ")
    assert bearer.startswith("eyJ")
    assert all(leaks(bearer, answer) for answer in echo.answered), "the server echoed the token"
    assert str(raised.value).count(shown) >= 1, str(raised.value)
    assert leaks(bearer, str(raised.value), repr(raised.value)) == []
    assert leaks(bearer, *record_texts(caplog)) == []
    finished = spans.get_finished_spans()
    assert [span.name for span in finished] == ["platform.register"]
    assert leaks(bearer, *span_texts(finished)) == []


async def test_a_platform_error_shows_its_fields_with_token_like_strings_redacted(
    entra_standin: EntraStandIn, tenant: Tenant, agent_app: App, spans: InMemorySpanExporter
) -> None:
    async with EchoServer(403, "platform") as echo:
        client = client_for(echo.url, entra_standin, tenant, agent_app, spans)
        try:
            with pytest.raises(RegistrationRefusedError) as raised:
                await client.register()
        finally:
            await client.aclose()

    message = str(raised.value)
    assert "ask the platform team to assign the agent app role" in message
    assert (
        "Platform said: forbidden Bearer [redacted]: you sent Authorization: Bearer [redacted] in {"
        in message
    )
    assert message.endswith("(field: Bearer [redacted])")
    assert "\n" not in message


async def test_an_authority_echoing_the_token_request_never_shows_the_client_secret(
    entra_standin: EntraStandIn,
    tenant: Tenant,
    agent_app: App,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with EchoServer(400, "oauth", tls=entra_standin) as authority:
        settings = Settings(
            platform_url="http://127.0.0.1:9",
            scope=tenant.scope,
            azure_client_id=agent_app.app_id,
            azure_client_secret=agent_app.secret,
            azure_tenant_id=entra_standin.tenant_id,
            azure_authority_host=authority.url,
        )
        identity = PlatformIdentity(settings, connection_verify=str(entra_standin.ca_file))
        try:
            with caplog.at_level(logging.DEBUG), pytest.raises(CredentialError) as raised:
                await identity.get_token()
        finally:
            await identity.close()

    posted = [seen["body"] for seen in authority.received if seen["method"] == "POST"]
    assert posted, "azure-identity posted no token request"
    assert all(agent_app.secret in answer for answer in authority.answered if "client_secret" in answer)
    assert "AADSTS7000215" in str(raised.value)
    assert leaks(agent_app.secret, str(raised.value), *record_texts(caplog)) == []
    assert "client_secret=[redacted]" in str(raised.value)
