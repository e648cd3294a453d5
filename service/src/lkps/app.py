"""The Starlette application factory: wires settings, identity, tokens, Graph, database writers and routes."""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable

import certifi
import httpx
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import db
from .audit import AuditWriter
from .errors import ApiError, api_error_handler
from .graph import ClientAuthorizer, GraphAuthorizer, build_credential
from .handlers import Handlers
from .health import HealthChecker
from .hot_routes import HotRoutes
from .identity import IdentityResolver, build_identity
from .openapi import document
from .registry import AgentRegistry
from .settings import Settings
from .telemetry import TracingMiddleware, build_tracer_provider
from .tokens import TokenMinter
from .webhook_auth import WebhookVerifier
from .webhooks import WebhookWriter

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    authorizer: ClientAuthorizer | None = None,
    identity: IdentityResolver | None = None,
    engine: AsyncEngine | None = None,
    clock: Callable[[], float] = time.time,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """Build the app. Keyword arguments are seams for tests; production passes only ``settings``."""
    engine = engine or db.create_engine(settings.database_url)
    http = httpx.AsyncClient(timeout=10.0, verify=tls_context(settings))
    provider = tracer_provider or build_tracer_provider(settings)
    handlers = Handlers(
        settings=settings,
        identity=identity or build_identity(settings, http=http),
        minter=TokenMinter(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()),
        registry=AgentRegistry(
            engine,
            time.monotonic,
            legacy_token_ttl=settings.agent_token_ttl,
            ttl=settings.registry_cache_ttl,
        ),
        authorizer=authorizer or GraphAuthorizer(settings, build_credential(settings), http=http),
        audit=AuditWriter(
            engine,
            queue_size=settings.audit_queue_size,
            batch_size=settings.audit_batch_size,
            flush_timeout=settings.audit_flush_timeout,
        ),
        webhook_verifier=WebhookVerifier(
            settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        ),
        webhook_writer=WebhookWriter(engine, batch_size=settings.webhook_batch_size),
        health=HealthChecker(
            engine,
            settings.livekit_health_url,
            timeout=settings.health_timeout,
            http=http,
            cache_for=settings.health_cache_ttl,
        ),
        clock=clock,
    )
    openapi = document()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await db.upgrade_async(settings.database_url)
        handlers.audit.start()
        handlers.webhook_writer.start()
        log.info(
            "lkps started",
            extra={"identity_mode": settings.identity_mode, "database": engine.url.get_backend_name()},
        )
        try:
            yield
        finally:
            await handlers.audit.stop()
            await handlers.webhook_writer.stop()
            await handlers.identity.aclose()
            if handlers.authorizer is not None:
                await handlers.authorizer.aclose()
            await http.aclose()
            await engine.dispose()
            if provider is not None:
                provider.shutdown()
            log.info(
                "lkps stopped",
                extra={
                    "audit_written": handlers.audit.written,
                    "audit_batches": handlers.audit.batches,
                    "audit_dropped": handlers.audit.dropped,
                    "webhooks_stored": handlers.webhook_writer.stored,
                    "webhook_duplicates": handlers.webhook_writer.duplicates,
                    "webhook_batches": handlers.webhook_writer.batches,
                    "webhooks_verified_by_livekit_api": handlers.webhook_verifier.deferred,
                },
            )

    routes = [
        Route("/api/agent/register", handlers.register_agent, methods=["POST"]),
        Route("/api/session/start", handlers.start_session, methods=["POST"]),
        Route("/livekit/webhook", handlers.livekit_webhook, methods=["POST"]),
        Route("/api/health", handlers.get_health, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
    middleware = []
    if provider is not None:
        paths = frozenset(r.path for r in routes)
        middleware.append(Middleware(TracingMiddleware, provider=provider, routes=paths))
    # The POST routes (the API's work: register, session start, webhooks) go through HotRoutes, ahead of the
    # router; their Routes still declare them and answer other methods with 405.
    posts = {r.path: r.endpoint for r in routes if r.methods == {"POST"}}
    middleware.append(Middleware(HotRoutes, routes=posts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: api_error_handler, 500: _internal_error},
        lifespan=lifespan,
    )
    app.state.handlers = handlers
    app.state.settings = settings
    return app


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Trust for outbound HTTPS (Entra keys, Graph): ``SSL_CERT_FILE`` when set, else certifi's bundle."""
    return ssl.create_default_context(cafile=settings.ca_file or certifi.where())


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Details stay in the server log (uvicorn logs the traceback); the caller learns nothing internal.
    return JSONResponse(
        {"error": "internal_error", "detail": "unexpected server error; it has been logged"}, 500
    )
