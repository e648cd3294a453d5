"""Builds the service: reads the settings once, makes every choice once (which speedups run, PostgreSQL's or
SQLite's statements), and wires each layer's collaborators: the HTTP edge (``api``), identity and webhook
signatures (``auth``), the domain, storage, observability, and the speedups (``LKPS_SPEEDUPS``)."""

from __future__ import annotations

import contextlib
import gc
import logging
import secrets
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass

import certifi
import httpx
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import generate_latest, start_http_server
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp

from .api.admin import AdminViews
from .api.agents import AgentRegistration
from .api.connections import ConnectionLimits, LimitedHttpToolsProtocol, OnRefusal, limited
from .api.health import Health, HealthChecker
from .api.openapi import document
from .api.responses import JsonResponse, exception_handlers
from .api.sessions import SessionStart
from .api.webhooks import LiveKitWebhooks
from .auth.entra import EntraIdentity
from .auth.gateway import GatewayIdentity
from .auth.graph import ClientAuthorizer, GraphAuthorizer, build_credential
from .auth.identity import IdentityResolver
from .auth.webhooks import WebhookVerifier
from .domain.agents import AgentRegistry
from .domain.ids import Ids
from .domain.room_names import RoomNames
from .domain.tokens import TokenMinter
from .observability.logs import JsonFormatter, TextFormatter, configure_logging
from .observability.metrics import CONTENT_TYPE, Metrics, RequestMetrics
from .observability.refusals import Refusals
from .observability.tracing import TraceContext, TracingMiddleware, build_tracer_provider
from .relay.agent_tokens import AgentTokenVerifier
from .relay.connections import Connections
from .relay.monitor import LivenessMonitor
from .relay.protocol import RelayWebSocketProtocol
from .relay.socket import AgentRelay
from .relay.upstream import LiveKitUpstream
from .settings import DatabaseSettings, Settings
from .speedups.bulk import BulkWrites, HeldConnectionBatches
from .speedups.caches import BufferedRoomNames, CachedGatewayIdentity, FastIds
from .speedups.hot_routes import HotRoutes
from .speedups.http_protocol import CorkedHttpToolsProtocol
from .speedups.logs import BatchingStreamHandler, FastJsonFormatter, skip_record_details
from .speedups.responses import ApiResponse
from .speedups.tokens import PreparedTokenMinter
from .speedups.webhooks import FastWebhookVerifier
from .storage import migrate
from .storage.agent_status import AgentStatusStore
from .storage.agents import AgentStore
from .storage.audit_writer import AuditWriter
from .storage.engine import create_engine
from .storage.webhook_writer import EventBatches, TransactionalBatches, WebhookWriter
from .storage.writes import SqlWrites

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The collaborators that live as long as the app (its lifespan starts and stops them); on
    ``app.state.services``."""

    settings: Settings
    engine: AsyncEngine
    http: httpx.AsyncClient
    identity: IdentityResolver
    authorizer: ClientAuthorizer | None
    writes: SqlWrites
    audit: AuditWriter
    webhook_verifier: WebhookVerifier
    webhook_writer: WebhookWriter
    tracer_provider: TracerProvider | None
    metrics: Metrics
    refusals: Refusals
    # Where a separate metrics port (LKPS_METRICS_PORT) listens: lkps serve's --host.
    metrics_host: str = "127.0.0.1"
    registry: AgentRegistry | None = None
    # the agent relay (lkps.relay): this replica's worker connections, their monitor, the way to LiveKit
    relay_connections: Connections | None = None
    relay_monitor: LivenessMonitor | None = None
    relay_upstream: LiveKitUpstream | None = None


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
    engine = engine or create_engine(settings.database_url)
    http = httpx.AsyncClient(timeout=10.0, verify=tls_context(settings))
    # Each speedup, or the plain piece it replaces: chosen here and nowhere else.
    on = settings.speedups
    json: JsonResponse = ApiResponse if "json" in on else JSONResponse
    ids = FastIds() if "caches" in on else Ids()
    room_names = BufferedRoomNames() if "caches" in on else RoomNames()
    minter_class = PreparedTokenMinter if "tokens" in on else TokenMinter
    secret = settings.livekit_api_secret.get_secret_value()
    minter = minter_class(settings.livekit_api_key, secret)
    # Agent tokens are signed with the platform's agent key, which LiveKit does not know: only the relay takes
    # them. Without LKPS_AGENT_TOKEN_SECRET (tests, `lkps dev` says so) a key for this process alone.
    agent_secret = (
        settings.agent_token_secret.get_secret_value()
        if settings.agent_token_secret is not None
        else secrets.token_urlsafe(48)
    )
    agent_minter = minter_class(settings.agent_token_key_id, agent_secret)
    verifier_class = FastWebhookVerifier if "webhooks" in on else WebhookVerifier
    verifier = verifier_class(settings.livekit_api_key, secret)
    metrics = Metrics()
    if identity is None:
        gateway_class = CachedGatewayIdentity if "caches" in on else GatewayIdentity
        entra = settings.identity_mode == "entra"
        identity = EntraIdentity(settings, http=http) if entra else gateway_class(settings)

    # PostgreSQL or SQLite: the one place the database decides which statements run.
    writes: SqlWrites
    batches: EventBatches
    if "bulk" in on and engine.dialect.name == "postgresql":
        writes = BulkWrites()
        batches = HeldConnectionBatches(engine, writes)
    else:
        writes = SqlWrites(engine.dialect.name)
        batches = TransactionalBatches(engine, writes)

    services = Services(
        settings=settings,
        engine=engine,
        http=http,
        identity=identity,
        authorizer=authorizer
        or GraphAuthorizer(settings, build_credential(settings), http=http, metrics=metrics),
        writes=writes,
        audit=AuditWriter(
            engine,
            writes,
            queue_size=settings.audit_queue_size,
            batch_size=settings.audit_batch_size,
            flush_timeout=settings.audit_flush_timeout,
            stuck_after=settings.audit_stuck_after,
        ),
        webhook_verifier=verifier,
        webhook_writer=WebhookWriter(batches, batch_size=settings.webhook_batch_size),
        tracer_provider=tracer_provider or build_tracer_provider(settings),
        metrics=metrics,
        refusals=Refusals(metrics),
    )
    metrics.watch_audit(services.audit)
    registry = AgentRegistry(
        AgentStore(engine, legacy_token_ttl=settings.agent_token_ttl),
        time.monotonic,
        ttl=settings.registry_cache_ttl,
        max_entries=settings.registry_cache_size,
    )
    services.registry = registry
    agents = AgentRegistration(
        settings=settings,
        identity=identity,
        minter=agent_minter,
        registry=registry,
        audit=services.audit,
        ids=ids,
        json=json,
        clock=clock,
        metrics=metrics,
    )
    services.relay_connections = Connections()
    services.relay_upstream = LiveKitUpstream(settings.livekit_url, minter, tls_context(settings))
    status_store = AgentStatusStore(engine)
    statuses = status_store.statuses
    services.relay_monitor = LivenessMonitor(
        services.relay_connections,
        status_store.cutoff_candidates,
        interval=settings.relay_check_interval,
        clock=clock,
    )
    relay = AgentRelay(
        verifier=AgentTokenVerifier(settings.agent_token_key_id, agent_secret),
        statuses=statuses,
        upstream=services.relay_upstream,
        connections=services.relay_connections,
        audit=services.audit,
        ids=ids,
        livekit_url=settings.livekit_url,
        clock=clock,
        refusals=services.refusals,
    )
    sessions = SessionStart(
        settings=settings,
        identity=identity,
        minter=minter,
        registry=registry,
        authorizer=services.authorizer,
        room_names=room_names,
        audit=services.audit,
        ids=ids,
        json=json,
        clock=clock,
        metrics=metrics,
    )
    webhooks = LiveKitWebhooks(
        verifier=verifier,
        writer=services.webhook_writer,
        write_timeout=settings.webhook_write_timeout,
        json=json,
        metrics=metrics,
    )
    health = Health(
        checker=HealthChecker(
            engine,
            settings.livekit_health_url,
            timeout=settings.health_timeout,
            http=http,
            cache_for=settings.health_cache_ttl,
            audit_stuck=lambda: services.audit.stuck,
            on_database_error=lambda: metrics.database_error("health"),
        ),
        json=json,
        clock=clock,
    )
    admin = AdminViews(
        settings=settings, identity=identity, engine=engine, json=json, clock=clock, metrics=metrics
    )
    openapi = document()

    async def openapi_json(request: Request) -> Response:
        return json(openapi)

    routes: list[Route | WebSocketRoute] = [
        Route("/api/agent/register", agents.register, methods=["POST"]),
        Route("/api/session/start", sessions.start, methods=["POST"]),
        Route("/livekit/webhook", webhooks.receive, methods=["POST"]),
        Route("/api/health", health.get, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/admin/agents", admin.agents, methods=["GET"]),
        Route("/api/admin/sessions", admin.sessions, methods=["GET"]),
        WebSocketRoute("/agent", relay.serve),
    ]
    if settings.metrics_enabled and settings.metrics_port is None:
        routes.append(Route("/metrics", _exposition(metrics), methods=["GET"]))
    metrics.routes = frozenset(r.path for r in routes)
    middleware = []
    if services.tracer_provider is not None:
        paths = frozenset(r.path for r in routes if isinstance(r, Route))
        middleware.append(Middleware(TracingMiddleware, provider=services.tracer_provider, routes=paths))
    timed = metrics if settings.metrics_enabled else None
    if "routes" in on:
        # The POST routes (the API's work) go through HotRoutes, ahead of the router; their Routes still
        # declare them and answer other methods with 405. It times them itself, RequestMetrics the rest.
        posts = {r.path: r.endpoint for r in routes if isinstance(r, Route) and r.methods == {"POST"}}
        hot = Middleware(HotRoutes, routes=posts, json=json, on_refusal=services.refusals, metrics=timed)
        middleware.append(hot)
    if timed is not None:
        middleware.append(Middleware(RequestMetrics, metrics=timed))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=exception_handlers(json, services.refusals),
        lifespan=_lifespan(services),
    )
    app.state.services = services
    return app


def _exposition(metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    async def exposition(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE)

    return exposition


def _lifespan(services: Services) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    settings = services.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await migrate.upgrade_async(settings.database_url)
        metrics_server = None
        if settings.metrics_enabled and settings.metrics_port is not None:
            metrics_server, _ = start_http_server(
                settings.metrics_port, addr=services.metrics_host, registry=services.metrics.registry
            )
        services.audit.start()
        services.webhook_writer.start()
        if services.relay_monitor is not None:
            services.relay_monitor.start()
        log.info(
            "lkps started",
            extra={
                "identity_mode": settings.identity_mode,
                "database": services.engine.url.get_backend_name(),
                "speedups": sorted(settings.speedups),
            },
        )
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            services.refusals.flush()
            if services.relay_monitor is not None:
                await services.relay_monitor.stop()
            if services.relay_upstream is not None:
                await services.relay_upstream.aclose()
            await services.audit.stop()
            await services.webhook_writer.stop()
            await services.identity.aclose()
            if services.authorizer is not None:
                await services.authorizer.aclose()
            await services.http.aclose()
            await services.engine.dispose()
            if services.tracer_provider is not None:
                services.tracer_provider.shutdown()
            counters = {
                "audit_written": services.audit.written,
                "audit_batches": services.audit.batches,
                "audit_dropped": services.audit.dropped,
                "audit_set_aside": services.audit.set_aside,
                "webhooks_stored": services.webhook_writer.stored,
                "webhook_duplicates": services.webhook_writer.duplicates,
                "webhook_batches": services.webhook_writer.batches,
            }
            if isinstance(services.webhook_verifier, FastWebhookVerifier):
                counters["webhooks_verified_by_livekit_api"] = services.webhook_verifier.deferred
            log.info("lkps stopped", extra=counters)

    return lifespan


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Trust for outbound HTTPS (Entra keys, Graph): ``SSL_CERT_FILE`` when set, else certifi's bundle."""
    return ssl.create_default_context(cafile=settings.ca_file or certifi.where())


def server_config(
    app: ASGIApp,
    host: str,
    port: int,
    speedups: Collection[str],
    limits: ConnectionLimits | None = None,
    on_refusal: OnRefusal | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration ``lkps serve`` runs with (test servers and the benchmark floor too).
    Logging stays the service's (no uvicorn log config, no access log: the service logs each request
    itself); no ``server`` header; lifespan on (it starts and stops the writers). The HTTP protocol is
    uvicorn's httptools protocol with the service's connection ``limits`` (:mod:`lkps.api.connections`);
    speedup ``http``: corked as well. The protocol's refusals go to ``on_refusal`` (the service's
    :class:`Refusals`); it knows the app's route paths (their targets need no check)."""
    limits = limits or ConnectionLimits()
    protocol = CorkedHttpToolsProtocol if "http" in speedups else LimitedHttpToolsProtocol
    paths = [
        path for route in getattr(app, "routes", ()) if isinstance(path := getattr(route, "path", None), str)
    ]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        http=limited(protocol, limits, on_refusal, paths),
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]
        # the agent relay's websockets carry small protobuf messages: no per-connection compressor
        ws_per_message_deflate=False,
        # uvicorn's, without its per-connection lines for refused workers (lkps.relay.protocol)
        ws=RelayWebSocketProtocol,
    )


def setup_logging(settings: DatabaseSettings) -> None:
    """The process's logging: JSON lines (or readable text) on stderr, at ``LKPS_LOG_LEVEL``; the commands
    that read only the database settings log without the speedups or trace ids."""
    full = settings if isinstance(settings, Settings) else None
    batched = full is not None and "logs" in full.speedups
    handler = BatchingStreamHandler(sys.stderr) if batched else logging.StreamHandler(sys.stderr)
    if settings.log_format == "text":
        handler.setFormatter(TextFormatter())
    else:
        handler.setFormatter(FastJsonFormatter() if batched else JsonFormatter())
    if full is not None and full.otlp_endpoint:
        handler.addFilter(TraceContext())
    configure_logging(settings.log_level, handler)
    if batched:
        skip_record_details()


def server(settings: Settings, host: str, port: int) -> uvicorn.Server:
    """The server ``lkps serve`` runs: the app on :func:`server_config`."""
    app = create_app(settings)
    app.state.services.metrics_host = host
    limits = ConnectionLimits.of(settings)
    config = server_config(app, host, port, settings.speedups, limits, app.state.services.refusals)
    # In-flight requests get a bounded drain, so the lifespan (the audit flush) always runs within the pod's
    # grace period: uvicorn otherwise waits for them without limit.
    config.timeout_graceful_shutdown = settings.shutdown_drain_timeout
    instance = uvicorn.Server(config)
    if "gc" in settings.speedups:
        # What exists now (modules, settings, the app) lives as long as the process: frozen out of the
        # cyclic collector's view, full collections under load walk only per-request objects.
        gc.collect()
        gc.freeze()
    return instance
