"""The service's settings: one field per environment variable (its name, default, bounds and reference text),
read once by ``Settings.from_env()``, validated, frozen.

Every problem is reported together, each naming the variable, what is wrong and how to fix it. Rules that
span variables are field validators reading the fields declared before them (``info.data``), so they are
reported with the rest rather than only once every field is valid.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationInfo, field_validator

from . import speedups as _speedups
from .envsettings import CommaList, EnvSettings, Flag, Lowercase, SettingsError, is_secret, url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DatabaseSettings",
    "IdentityMode",
    "Settings",
    "SettingsError",
    "livekit_health_url",
    "normalize_database_url",
    "redacted_database_url",
]

IdentityMode = Literal["entra", "gateway"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./lkps.db"
DEFAULT_ENTRA_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# LiveKit servers refuse secrets shorter than this, and PyJWT warns below it for HS256.
MIN_SECRET_BYTES = 32


def livekit_health_url(livekit_url: str) -> str:
    """The HTTP(S) root of the LiveKit server, where it answers ``GET /`` with 200 when healthy."""
    parts = urlsplit(livekit_url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "/", "", ""))


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://``/``postgres://``/``sqlite://`` URLs and pick the async driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def _database_url(value: object) -> object:
    if not isinstance(value, str):
        return value
    normalized = normalize_database_url(value)
    if not normalized.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        scheme = normalized.split("://", 1)[0]
        # the URL itself may hold a password: name only its scheme
        raise ValueError(f"uses {scheme!r}: use postgresql://user@host/db or sqlite:///path/to/file.db")
    return normalized


def _guid(value: str | None) -> str | None:
    if value is not None:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("is not a GUID: use the directory (tenant) ID from Entra") from None
    return value


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"is shorter than {MIN_SECRET_BYTES} bytes: use the server's full secret")
    return value


def _long_enough_if_set(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"is shorter than {MIN_SECRET_BYTES} bytes: generate one, e.g. with 'openssl rand -base64 48'"
        )
    return value


def _existing_file(value: str | None) -> str | None:
    if value is not None and not os.path.isfile(value):
        raise ValueError("does not exist: point it at a PEM CA bundle or unset it")
    return value


def _speedups_named(value: object) -> object:
    if not isinstance(value, str):
        return value
    names, unknown = _speedups.parse(value)
    if unknown:
        raise ValueError(
            f"names unknown speedups ({', '.join(unknown)}): use on, off or a comma-separated list of"
            f" {', '.join(_speedups.SPEEDUPS)}"
        )
    return names


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lowercase_all(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value.lower() for value in values)


Guid = Annotated[str | None, AfterValidator(_guid)]
Header = Annotated[str, AfterValidator(str.lower)]
"""An HTTP header name, lower-cased as the ASGI server delivers them."""

_LIVEKIT = "LiveKit"
_DATABASE = "Database"
_IDENTITY = "Identity"
_GRAPH = "Microsoft Graph (client-to-agent authorization)"
_TOKENS = "Tokens, registry, audit and webhooks"
_OPERATIONS = "Health, logs and tracing"
_SPEEDUPS = "Speedups"
_EDGE = "HTTP connections and limits"
_RELAY = "Agent relay"
DEFAULT_AGENT_TOKEN_KEY_ID = "lkps-agent"  # noqa: S105 - a key ID, not a secret


class DatabaseSettings(EnvSettings):
    """What the commands that only use the database read (``lkps migrate``, ``agents``, ``sessions``): the
    database URL and how to log. :class:`Settings` holds them too, with everything else."""

    subject: ClassVar[str] = "the platform service"
    prefix: ClassVar[str | None] = "LKPS_"

    database_url: Annotated[str, BeforeValidator(_database_url)] = Field(
        DEFAULT_DATABASE_URL,
        validation_alias="LKPS_DATABASE_URL",
        description="`postgresql://user:password@host:5432/db` (asyncpg) or `sqlite:///path/to/file.db` "
        "(aiosqlite); `postgres://` works too. Use PostgreSQL in production.",
        json_schema_extra={"group": _DATABASE, "default_text": "`sqlite:///./lkps.db`", "sensitive": True},
    )
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = Field(
        "INFO",
        validation_alias="LKPS_LOG_LEVEL",
        description="The least severe level logged (any case).",
        json_schema_extra={"group": _OPERATIONS},
    )
    log_format: Annotated[Literal["json", "text"], Lowercase] = Field(
        "json",
        validation_alias="LKPS_LOG_FORMAT",
        description="`json`: one object per line; `text`: readable lines.",
        json_schema_extra={"group": _OPERATIONS, "default_text": "`json` (`lkps dev`: `text`)"},
    )

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str] | None = None) -> list[str]:
        # The service's other variables are set alongside (one environment for every command): not typos.
        if cls is DatabaseSettings:
            return Settings.unknown_variables(environ)
        return super().unknown_variables(environ)


class Settings(DatabaseSettings):
    """Everything the service reads from its environment (docs/reference/service-settings.md is rendered
    from these fields)."""

    subject: ClassVar[str] = "the platform service"
    prefix: ClassVar[str | None] = "LKPS_"

    # -- LiveKit
    livekit_url: Annotated[str, url("wss", "ws", "https", "http")] = Field(
        validation_alias="LIVEKIT_URL",
        title="the LiveKit server URL handed to agents and clients, e.g. wss://livekit.example.com",
        description="The LiveKit server URL handed to agents and clients (`wss://…`; `ws`, `https`, `http` "
        "accepted).",
        json_schema_extra={"group": _LIVEKIT},
    )
    livekit_api_key: str = Field(
        validation_alias="LIVEKIT_API_KEY",
        title="the LiveKit server's API key",
        description="The LiveKit API key. The service is its only holder.",
        json_schema_extra={"group": _LIVEKIT},
    )
    livekit_api_secret: Annotated[SecretStr, AfterValidator(_long_enough)] = Field(
        validation_alias="LIVEKIT_API_SECRET",
        title="the secret paired with LIVEKIT_API_KEY",
        description=f"The secret paired with the key; at least {MIN_SECRET_BYTES} bytes. Signs every token "
        "and verifies every webhook.",
        json_schema_extra={"group": _LIVEKIT},
    )
    livekit_health_url: Annotated[str, url("https", "http")] = Field(
        "",
        validation_alias="LKPS_LIVEKIT_HEALTH_URL",
        description="What the health check GETs to decide whether LiveKit is up.",
        json_schema_extra={"group": _LIVEKIT, "default_text": "`LIVEKIT_URL` as http(s), path `/`"},
    )

    # -- Database
    migrate_on_start: Flag = Field(
        False,
        validation_alias="LKPS_MIGRATE_ON_START",
        description="Run the Alembic migrations at startup. In production run `lkps migrate` as its own "
        "step instead.",
        json_schema_extra={"group": _DATABASE, "default_text": "`false` (`lkps dev`: `true`)"},
    )

    # -- HTTP connections and limits
    max_header_bytes: int = Field(
        16 * 1024,
        ge=4096,
        le=1024 * 1024,
        validation_alias="LKPS_MAX_HEADER_BYTES",
        description="Largest request head (request line and headers) read; a larger one is answered 431 and "
        "the connection closed before the rest is read. Entra access tokens are a few KB.",
        json_schema_extra={"group": _EDGE, "unit": "bytes"},
    )
    header_timeout: float = Field(
        10.0,
        ge=0.1,
        le=600,
        validation_alias="LKPS_HEADER_TIMEOUT",
        description="Time a client has to send a request's whole head, counted from its first byte (or from"
        " the connection's opening); then the connection is closed (slow-header attacks).",
        json_schema_extra={"group": _EDGE, "unit": "seconds"},
    )
    body_timeout: float = Field(
        30.0,
        ge=0.1,
        le=3600,
        validation_alias="LKPS_BODY_TIMEOUT",
        description="Time a client has to send a request's whole body, counted from the end of its head; then"
        " the connection is closed (slow-body attacks). Bodies are at most 64 KiB (webhooks 1 MiB).",
        json_schema_extra={"group": _EDGE, "unit": "seconds"},
    )
    idle_timeout: float = Field(
        5.0,
        ge=0.1,
        le=3600,
        validation_alias="LKPS_IDLE_TIMEOUT",
        description="An HTTP connection with no request in progress is closed after this long, including one "
        "that never sent a byte. Websocket connections (once upgraded) are not affected.",
        json_schema_extra={"group": _EDGE, "unit": "seconds"},
    )
    max_connections: int = Field(
        4096,
        ge=16,
        le=1_000_000,
        validation_alias="LKPS_MAX_CONNECTIONS",
        description="Open connections (HTTP and websocket) one process keeps; a connection past it is closed"
        " at once. Keep it above the agents' websocket connections per process plus the HTTP clients, and"
        " below the process's file descriptor limit.",
        json_schema_extra={"group": _EDGE},
    )

    # -- Identity
    identity_mode: Annotated[IdentityMode, Lowercase] = Field(
        "entra",
        validation_alias="LKPS_IDENTITY_MODE",
        description="`entra`: the service validates the Entra bearer token itself. `gateway`: it trusts "
        "identity headers injected by an upstream gateway. See "
        "[identity modes](../service-operations.md#identity-modes).",
        json_schema_extra={"group": _IDENTITY},
    )
    entra_tenant_id: Guid = Field(
        None,
        validation_alias="LKPS_ENTRA_TENANT_ID",
        description="The tenant GUID whose tokens are accepted.",
        json_schema_extra={"group": _IDENTITY, "default_text": "required in `entra` mode"},
    )
    entra_audiences: CommaList = Field(
        (),
        validation_alias="LKPS_ENTRA_AUDIENCE",
        description="Accepted audiences: the platform app's client ID and its app ID URI, e.g. "
        "`<app-id>,api://<app-id>`.",
        json_schema_extra={"group": _IDENTITY, "default_text": "required in `entra` mode"},
    )
    entra_authority: Annotated[str, url("https")] = Field(
        DEFAULT_ENTRA_AUTHORITY,
        validation_alias="LKPS_ENTRA_AUTHORITY",
        description="Authority host: OpenID metadata is read from "
        "`{authority}/{tenant}/v2.0/.well-known/openid-configuration`. Also used by the Graph credential.",
        json_schema_extra={"group": _IDENTITY},
    )
    entra_issuers: CommaList = Field(
        (),
        validation_alias="LKPS_ENTRA_ISSUERS",
        description="Accepted token issuers (v2 and v1 tokens).",
        json_schema_extra={
            "group": _IDENTITY,
            "default_text": "`{authority}/{tenant}/v2.0`, `https://sts.windows.net/{tenant}/`",
        },
    )
    entra_register_role: str = Field(
        "Agent.Register",
        validation_alias="LKPS_ENTRA_REGISTER_ROLE",
        description="App role a token must carry in `roles` to call `POST /api/agent/register`. Empty "
        "disables the check.",
        json_schema_extra={"group": _IDENTITY, "blank": True},
    )
    entra_session_role: str = Field(
        "Session.Start",
        validation_alias="LKPS_ENTRA_SESSION_ROLE",
        description="App role a token must carry to call `POST /api/session/start`. Empty disables the "
        "check.",
        json_schema_extra={"group": _IDENTITY, "blank": True},
    )
    entra_cwid_claims: CommaList = Field(
        ("cwid", "oid"),
        validation_alias="LKPS_ENTRA_CWID_CLAIMS",
        description="Claims tried, in order, for the caller's user ID / employee ID (the `cwid` used in room "
        "names and job metadata).",
        json_schema_extra={"group": _IDENTITY},
    )
    entra_leeway: int = Field(
        60,
        ge=0,
        le=600,
        validation_alias="LKPS_ENTRA_LEEWAY",
        description="Clock skew allowed on `exp`/`nbf`.",
        json_schema_extra={"group": _IDENTITY, "unit": "seconds"},
    )
    gateway_client_id_header: Header = Field(
        "client-id",
        validation_alias="LKPS_GATEWAY_CLIENT_ID_HEADER",
        description="`gateway` mode: header with the caller's Entra app (client) ID.",
        json_schema_extra={"group": _IDENTITY},
    )
    gateway_user_id_header: Header = Field(
        "user-id",
        validation_alias="LKPS_GATEWAY_USER_ID_HEADER",
        description="`gateway` mode: header with the caller's user (object) ID.",
        json_schema_extra={"group": _IDENTITY},
    )
    gateway_email_header: Header = Field(
        "x-user-email",
        validation_alias="LKPS_GATEWAY_EMAIL_HEADER",
        description="`gateway` mode: header with the caller's e-mail. Set it to your gateway's header name; "
        "empty: none is read (set only the headers your gateway sets).",
        json_schema_extra={"group": _IDENTITY, "blank": True},
    )
    gateway_profile_headers: Annotated[CommaList, AfterValidator(_lowercase_all)] = Field(
        ("user-profile", "x-user-profile"),
        validation_alias="LKPS_GATEWAY_PROFILE_HEADERS",
        description="`gateway` mode: headers with the caller's profile object (JSON or base64 JSON with "
        "`displayName`, `firstName`, `lastName`, `email`, `cwid`); the first present wins. Set them to your "
        "gateway's header names; empty: none is read.",
        json_schema_extra={"group": _IDENTITY, "blank": True},
    )

    gateway_shared_secret: Annotated[SecretStr | None, AfterValidator(_long_enough_if_set)] = Field(
        None,
        validation_alias="LKPS_GATEWAY_SHARED_SECRET",
        description="`gateway` mode: the secret the gateway sends in `LKPS_GATEWAY_SECRET_HEADER` on every "
        "request, proving it came through the gateway (compared in constant time; at least "
        f"{MIN_SECRET_BYTES} bytes). A request without it is answered 401. `lkps serve` refuses to start in "
        "`gateway` mode without it; `lkps dev` starts and warns that anyone reaching the port can claim any "
        "identity.",
        json_schema_extra={"group": _IDENTITY, "default_text": "required by `lkps serve` in `gateway` mode"},
    )
    gateway_secret_header: Header = Field(
        "x-gateway-secret",
        validation_alias="LKPS_GATEWAY_SECRET_HEADER",
        description="`gateway` mode: the header carrying `LKPS_GATEWAY_SHARED_SECRET`.",
        json_schema_extra={"group": _IDENTITY},
    )

    # -- Microsoft Graph
    graph_url: Annotated[str, url("https", "http")] = Field(
        DEFAULT_GRAPH_URL,
        validation_alias="LKPS_GRAPH_URL",
        description="Graph base URL. Keep v1.0: the check reads "
        "`preAuthorizedApplications[].delegatedPermissionIds`, which beta names differently.",
        json_schema_extra={"group": _GRAPH},
    )
    graph_scope: str = Field(
        DEFAULT_GRAPH_SCOPE,
        validation_alias="LKPS_GRAPH_SCOPE",
        description="Scope of the Graph token.",
        json_schema_extra={"group": _GRAPH},
    )
    graph_client_id: str | None = Field(
        None,
        validation_alias="LKPS_GRAPH_CLIENT_ID",
        description="With `LKPS_GRAPH_CLIENT_SECRET`: a client secret for Graph. Unset (both): "
        "`DefaultAzureCredential`, i.e. workload or managed identity on AKS. The identity needs the "
        "`Application.Read.All` application permission.",
        json_schema_extra={"group": _GRAPH},
    )
    graph_client_secret: SecretStr | None = Field(
        None,
        validation_alias="LKPS_GRAPH_CLIENT_SECRET",
        description="The Graph client secret; set together with `LKPS_GRAPH_CLIENT_ID`.",
        json_schema_extra={"group": _GRAPH},
    )
    graph_tenant_id: Guid = Field(
        None,
        validation_alias="LKPS_GRAPH_TENANT_ID",
        description="Tenant of the Graph client secret.",
        json_schema_extra={"group": _GRAPH, "default_text": "`LKPS_ENTRA_TENANT_ID`"},
    )
    graph_cache_ttl: float = Field(
        300.0,
        ge=0,
        le=86400,
        validation_alias="LKPS_GRAPH_CACHE_TTL",
        description="How long an *allowed* answer is trusted before Graph is asked again, per agent.",
        json_schema_extra={"group": _GRAPH, "unit": "seconds"},
    )
    graph_negative_cache_ttl: float = Field(
        30.0,
        ge=0,
        le=86400,
        validation_alias="LKPS_GRAPH_NEGATIVE_CACHE_TTL",
        description="How long a *denial* is trusted, so a newly pre-authorized client gets in soon.",
        json_schema_extra={"group": _GRAPH, "unit": "seconds"},
    )
    graph_timeout: float = Field(
        5.0,
        ge=0.1,
        le=60,
        validation_alias="LKPS_GRAPH_TIMEOUT",
        description="Timeout of one Graph call.",
        json_schema_extra={"group": _GRAPH, "unit": "seconds"},
    )
    ca_file: Annotated[str | None, AfterValidator(_existing_file)] = Field(
        None,
        # The standard variable; read here (not left to each library) because aiohttp fixes its default
        # trust store at import time, while httpx and azure-identity are given this file explicitly.
        validation_alias="SSL_CERT_FILE",
        description="PEM CA bundle for outbound HTTPS (Entra keys, Graph). Must exist when set.",
        json_schema_extra={"group": _GRAPH, "default_text": "the certifi bundle"},
    )

    # -- Tokens, registry, audit and webhooks
    agent_token_ttl: int = Field(
        3600,
        ge=60,
        le=86400,
        validation_alias="LKPS_AGENT_TOKEN_TTL",
        description="Lifetime of an agent (worker) token. The SDK renews before it ends.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )
    participant_token_ttl: int = Field(
        300,
        ge=60,
        le=900,
        validation_alias="LKPS_PARTICIPANT_TOKEN_TTL",
        description="Lifetime of a client's participant token: the time to join. LiveKit refreshes a "
        "connected participant's token itself; a token not yet used can recreate the room and dispatch the "
        "agent again until it expires, so it is short and capped at 15 minutes.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )
    registry_cache_ttl: float = Field(
        30.0,
        ge=0,
        le=3600,
        validation_alias="LKPS_REGISTRY_CACHE_TTL",
        description="How long an agent's registration read from the database is cached; registrations this "
        "replica made are known at once.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )
    registry_cache_size: int = Field(
        10_000,
        ge=100,
        le=10_000_000,
        validation_alias="LKPS_REGISTRY_CACHE_SIZE",
        description="Agents whose registration (or absence) is cached; the least recently used leaves first,"
        " so a flood of unknown agent IDs cannot grow memory. Keep it above the number of agents.",
        json_schema_extra={"group": _TOKENS},
    )
    audit_queue_size: int = Field(
        100_000,
        ge=1,
        le=10_000_000,
        validation_alias="LKPS_AUDIT_QUEUE_SIZE",
        description="Bound of the in-memory audit queue; records are dropped (counted, logged) only when it "
        "is full.",
        json_schema_extra={"group": _TOKENS},
    )
    audit_batch_size: int = Field(
        500,
        ge=1,
        le=10_000,
        validation_alias="LKPS_AUDIT_BATCH_SIZE",
        description="Audit rows written per transaction.",
        json_schema_extra={"group": _TOKENS},
    )
    audit_flush_timeout: float = Field(
        10.0,
        ge=0,
        le=600,
        validation_alias="LKPS_AUDIT_FLUSH_TIMEOUT",
        description="How long shutdown waits for the audit queue to drain.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )
    shutdown_drain_timeout: int = Field(
        20,
        ge=1,
        le=3600,
        validation_alias="LKPS_SHUTDOWN_DRAIN_TIMEOUT",
        description="How long shutdown waits for in-flight requests before cancelling them and flushing the "
        "audit queue: a request held open (a slow body) cannot use up the pod's grace period.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )
    audit_stuck_after: float = Field(
        60.0,
        ge=0.1,
        le=3600,
        validation_alias="LKPS_AUDIT_STUCK_AFTER",
        description="How long one audit batch may stay unwritten (retried, or waiting on a lock) before "
        "`GET /api/health` answers 503 with reason `audit`.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )
    webhook_batch_size: int = Field(
        500,
        ge=1,
        le=10_000,
        validation_alias="LKPS_WEBHOOK_BATCH_SIZE",
        description="Webhook events committed per transaction.",
        json_schema_extra={"group": _TOKENS},
    )
    webhook_write_timeout: float = Field(
        10.0,
        ge=0.1,
        le=600,
        validation_alias="LKPS_WEBHOOK_WRITE_TIMEOUT",
        description="How long a webhook delivery waits for its commit before answering 503.",
        json_schema_extra={"group": _TOKENS, "unit": "seconds"},
    )

    # -- Health, logs and tracing
    health_timeout: float = Field(
        2.0,
        ge=0.1,
        le=60,
        validation_alias="LKPS_HEALTH_TIMEOUT",
        description="Timeout of each health check (database, LiveKit).",
        json_schema_extra={"group": _OPERATIONS, "unit": "seconds"},
    )
    health_cache_ttl: float = Field(
        1.0,
        ge=0,
        le=60,
        validation_alias="LKPS_HEALTH_CACHE_TTL",
        description="How long probes share one health result.",
        json_schema_extra={"group": _OPERATIONS, "unit": "seconds"},
    )
    otlp_endpoint: str | None = Field(
        None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="When set, one OTLP/HTTP server span per request (`GET /api/health`, "
        "`POST /api/agent/register`, ...). Other `OTEL_EXPORTER_OTLP_*` variables are read by the exporter.",
        json_schema_extra={"group": _OPERATIONS},
    )
    service_name: str = Field(
        "lkps",
        validation_alias="OTEL_SERVICE_NAME",
        description="The spans' `service.name`.",
        json_schema_extra={"group": _OPERATIONS},
    )
    speedups: Annotated[frozenset[str], BeforeValidator(_speedups_named)] = Field(
        _speedups.ALL,
        validation_alias="LKPS_SPEEDUPS",
        description="The code that exists only for throughput: `on` (every speedup), `off` (the plain path:"
        " stock uvicorn protocol, Starlette routing, livekit-api's token and webhook code, SQLAlchemy"
        " statements), or a comma-separated list of the names to turn on: "
        + ", ".join(f"`{name}`" for name in _speedups.SPEEDUPS)
        + ". The API answers the same either way. See [speedups](../service-operations.md#speedups).",
        json_schema_extra={"group": _SPEEDUPS, "default_text": "`on`"},
    )

    # -- Metrics and admin views (issue 26)
    metrics_enabled: Flag = Field(
        True,
        validation_alias="LKPS_METRICS",
        description="Prometheus metrics (`lkps_*`) at `GET /metrics`, with a duration histogram per route. "
        "`false`: no `/metrics` and no per-request timing. See "
        "[metrics](../operating-the-service.md#metrics).",
        json_schema_extra={"group": _OPERATIONS},
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        validation_alias="LKPS_METRICS_PORT",
        description="Serve `/metrics` on this port (on the interface `lkps serve --host` binds) instead of "
        "the service's port, which then answers `/metrics` with 404.",
        json_schema_extra={"group": _OPERATIONS, "default_text": "the service's port"},
    )
    entra_admin_role: str = Field(
        "Platform.Admin",
        validation_alias="LKPS_ENTRA_ADMIN_ROLE",
        description="`entra` mode: app role a token must carry in `roles` to read the admin views "
        "(`GET /api/admin/agents`, `GET /api/admin/sessions`). Empty turns the admin views off (404). See "
        "[admin views](../operating-the-service.md#admin-views).",
        json_schema_extra={"group": _IDENTITY},
    )
    gateway_admin_client_ids: Annotated[CommaList, AfterValidator(_lowercase_all)] = Field(
        (),
        validation_alias="LKPS_GATEWAY_ADMIN_CLIENT_IDS",
        description="`gateway` mode: client IDs (in the client ID header) allowed to read the admin views, "
        "comma-separated. Empty: the admin views answer 404 in `gateway` mode.",
        json_schema_extra={"group": _IDENTITY, "default_text": "empty (admin views off)"},
    )

    # -- Agent relay
    agent_token_key_id: str = Field(
        DEFAULT_AGENT_TOKEN_KEY_ID,
        validation_alias="LKPS_AGENT_TOKEN_KEY_ID",
        description="The key ID (`iss`) of agent tokens. It must not be a key LiveKit knows: agent tokens "
        "are good only at the service's relay, never directly at LiveKit.",
        json_schema_extra={"group": _RELAY},
    )
    agent_token_secret: Annotated[SecretStr | None, AfterValidator(_long_enough_if_set)] = Field(
        None,
        validation_alias="LKPS_AGENT_TOKEN_SECRET",
        description=f"The platform key that signs agent (worker) tokens, at least {MIN_SECRET_BYTES} bytes; "
        "LiveKit never holds it. Every replica needs the same one.",
        json_schema_extra={
            "group": _RELAY,
            "default_text": "required by `lkps serve`; `lkps dev` makes a throwaway one at start",
        },
    )
    relay_url: Annotated[str, url("wss", "ws", "https", "http")] = Field(
        "",
        validation_alias="LKPS_RELAY_URL",
        description="The URL agents reach this service's relay at (its root: the worker dials "
        "`<url>/agent`), answered as `livekit_url` by `POST /api/agent/register`. Set it where agents "
        "reach the service directly, not through an API gateway.",
        json_schema_extra={"group": _RELAY, "default_text": "the URL the agent registered at, as ws(s)"},
    )
    relay_check_interval: float = Field(
        2.0,
        ge=0.1,
        le=60,
        validation_alias="LKPS_RELAY_CHECK_INTERVAL",
        description="How often each replica reads (one query) whether its connected agents were revoked or "
        "their latest token expired, and closes those workers: the bound is this plus one database round "
        "trip.",
        json_schema_extra={"group": _RELAY, "unit": "seconds"},
    )

    # -- rules across variables (each reads only fields declared above it)

    @field_validator("livekit_health_url")
    @classmethod
    def _health_url_defaults_to_livekit(cls, value: str, info: ValidationInfo) -> str:
        livekit_url = info.data.get("livekit_url")
        return value or (livekit_health_url(livekit_url) if livekit_url else "")

    @field_validator("entra_tenant_id")
    @classmethod
    def _entra_mode_needs_a_tenant(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("identity_mode") == "entra":
            raise ValueError(
                "is not set: identity mode 'entra' validates tokens of one tenant; set the tenant GUID or use"
                " LKPS_IDENTITY_MODE=gateway"
            )
        return value

    @field_validator("entra_audiences")
    @classmethod
    def _entra_mode_needs_audiences(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value and info.data.get("identity_mode") == "entra":
            raise ValueError(
                "is not set: list the platform app's client ID and app ID URI (comma-separated),"
                " e.g. '<app-id>,api://<app-id>'"
            )
        return value

    @field_validator("entra_issuers")
    @classmethod
    def _issuers_default_to_the_tenant(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        tenant, authority = info.data.get("entra_tenant_id"), info.data.get("entra_authority")
        if value or tenant is None or authority is None:
            return value
        # v2 tokens name the authority; v1 tokens (accessTokenAcceptedVersion 1) name sts.windows.net.
        return (f"{authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/")

    @field_validator("graph_client_secret")
    @classmethod
    def _graph_secret_goes_with_its_client_id(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if "graph_client_id" in info.data and (info.data["graph_client_id"] is None) != (value is None):
            state = (
                "is set but LKPS_GRAPH_CLIENT_ID is not"
                if value
                else "is not set but LKPS_GRAPH_CLIENT_ID is"
            )
            raise ValueError(
                f"{state}: the two must be set together; set both for a client secret, or neither for"
                " managed/workload identity"
            )
        return value

    @field_validator("graph_tenant_id")
    @classmethod
    def _graph_tenant_defaults_to_entra(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = value or info.data.get("entra_tenant_id")
        if value is None and "entra_tenant_id" in info.data and info.data.get("graph_client_id"):
            raise ValueError(
                "is not set: a Graph client secret needs its tenant; set it or LKPS_ENTRA_TENANT_ID"
            )
        return value

    @field_validator("agent_token_key_id")
    @classmethod
    def _agent_key_is_not_livekits(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("livekit_api_key"):
            raise ValueError(
                "is LIVEKIT_API_KEY: agent tokens must be signed with a key LiveKit does not know, or they"
                " work directly against LiveKit; use another key ID (default lkps-agent)"
            )
        return value

    @field_validator("agent_token_secret")
    @classmethod
    def _agent_secret_is_not_livekits(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        livekit = info.data.get("livekit_api_secret")
        theirs = livekit.get_secret_value() if livekit is not None else None
        if value is not None and value.get_secret_value() == theirs:
            raise ValueError(
                "is LIVEKIT_API_SECRET: agent tokens must be signed with a key LiveKit does not know;"
                " generate another secret (e.g. openssl rand -base64 48)"
            )
        return value

    @field_validator("relay_url")
    @classmethod
    def _relay_url_is_a_root(cls, value: str) -> str:
        if value and urlsplit(value).path not in ("", "/"):
            raise ValueError("has a path: the worker dials <url>/agent; give the service's root URL")
        return value

    # -- output

    def redacted(self) -> dict[str, object]:
        """The settings as a dict safe to log: secrets are replaced by whether they are set, and the database
        URL's password by ``***``."""
        out: dict[str, object] = {}
        for name, field in type(self).model_fields.items():
            value: Any = getattr(self, name)
            if is_secret(field):
                value = "<set>" if value is not None else "<unset>"
            elif name == "database_url":
                value = _without_password(value)
            out[name] = value
        return out


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def redacted_database_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, safe to log or print."""
    return _without_password(url)
