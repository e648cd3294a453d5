"""The service's settings: read once from the environment, validated, frozen.

Every problem is collected and reported together, each naming the variable, what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from . import speedups as _speedups

IdentityMode = Literal["entra", "gateway"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./lkps.db"
DEFAULT_ENTRA_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# LiveKit servers refuse secrets shorter than this, and PyJWT warns below it for HS256.
MIN_SECRET_BYTES = 32

_T = TypeVar("_T")


class SettingsError(ValueError):
    """One or more environment variables are missing or invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment (see service/README.md for each variable)."""

    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: str = field(repr=False)
    livekit_health_url: str
    database_url: str
    identity_mode: IdentityMode
    entra_tenant_id: str | None
    entra_audiences: tuple[str, ...]
    entra_authority: str
    entra_issuers: tuple[str, ...]
    entra_register_role: str
    entra_session_role: str
    entra_cwid_claims: tuple[str, ...]
    entra_leeway: int
    gateway_client_id_header: str
    gateway_user_id_header: str
    gateway_email_header: str
    gateway_profile_headers: tuple[str, ...]
    ca_file: str | None
    graph_url: str
    graph_scope: str
    graph_tenant_id: str | None
    graph_client_id: str | None
    graph_client_secret: str | None = field(repr=False)
    graph_cache_ttl: float
    graph_negative_cache_ttl: float
    graph_timeout: float
    registry_cache_ttl: float
    agent_token_ttl: int
    participant_token_ttl: int
    audit_queue_size: int
    audit_batch_size: int
    audit_flush_timeout: float
    webhook_batch_size: int
    webhook_write_timeout: float
    health_timeout: float
    health_cache_ttl: float
    migrate_on_start: bool
    log_level: str
    log_format: Literal["json", "text"]
    otlp_endpoint: str | None
    service_name: str
    # The speedups that are on (names of lkps.speedups.SPEEDUPS); empty: the plain path.
    speedups: frozenset[str] = _speedups.ALL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``env`` (default ``os.environ``); raise ``SettingsError`` listing every problem found."""
        return _Reader(os.environ if env is None else env).build()

    def redacted(self) -> dict[str, object]:
        """The settings as a dict safe to log: secrets are replaced by whether they are set."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in {"livekit_api_secret", "graph_client_secret"}:
                value = "<set>" if value else "<unset>"
            out[name] = value
        return out


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def required(self, name: str, fix: str) -> str:
        value = self.raw(name)
        if value is None:
            self.problems.append(f"{name} is not set: {fix}")
            return ""
        return value

    def number(self, name: str, default: _T, parse: Callable[[str], _T], low: float, high: float) -> _T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = parse(value)
        except ValueError:
            self.problems.append(f"{name}={value!r} is not a number: set it to a value in [{low}, {high}]")
            return default
        if not low <= float(parsed) <= high:  # type: ignore[arg-type]
            self.problems.append(f"{name}={value!r} is out of range: set it to a value in [{low}, {high}]")
            return default
        return parsed

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name}={value!r} is not a boolean: use true or false")
        return default

    def listing(self, name: str, default: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.text(name, default).split(",") if part.strip())

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            self.problems.append(f"{name}={value!r} is not one of {', '.join(allowed)}: pick one of them")
            return default
        return value

    def url(self, name: str, value: str, schemes: tuple[str, ...]) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            self.problems.append(
                f"{name}={value!r} is not a {'/'.join(schemes)} URL: use e.g. {schemes[0]}://host[:port]"
            )
        return value.rstrip("/")

    def database_url(self) -> str:
        url = normalize_database_url(self.text("LKPS_DATABASE_URL", DEFAULT_DATABASE_URL))
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            scheme = url.split("://", 1)[0]
            self.problems.append(
                f"LKPS_DATABASE_URL uses {scheme!r}: use postgresql://user@host/db or sqlite:///path/to/file.db"
            )
        return url

    def ca_file(self) -> str | None:
        # The standard variable; read here (not left to each library) because aiohttp fixes its default
        # trust store at import time, while httpx and azure-identity are given this file explicitly.
        path = self.raw("SSL_CERT_FILE")
        if path is not None and not os.path.isfile(path):
            self.problems.append(
                f"SSL_CERT_FILE={path!r} does not exist: point it at a PEM CA bundle or unset it"
            )
        return path

    def speedups(self) -> frozenset[str]:
        value = self.text("LKPS_SPEEDUPS", "on")
        names, unknown = _speedups.parse(value)
        if unknown:
            self.problems.append(
                f"LKPS_SPEEDUPS names unknown speedups ({', '.join(unknown)}): use on, off or a"
                f" comma-separated list of {', '.join(_speedups.SPEEDUPS)}"
            )
        return names

    def guid(self, name: str, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            uuid.UUID(value)
        except ValueError:
            self.problems.append(f"{name}={value!r} is not a GUID: use the directory (tenant) ID from Entra")
        return value

    def build(self) -> Settings:
        livekit_url = self.url(
            "LIVEKIT_URL",
            self.required("LIVEKIT_URL", "set it to the LiveKit server URL handed to agents and clients"),
            ("wss", "ws", "https", "http"),
        )
        api_key = self.required("LIVEKIT_API_KEY", "set it to the LiveKit server's API key")
        api_secret = self.required("LIVEKIT_API_SECRET", "set it to the secret paired with LIVEKIT_API_KEY")
        if api_secret and len(api_secret.encode()) < MIN_SECRET_BYTES:
            self.problems.append(
                f"LIVEKIT_API_SECRET is shorter than {MIN_SECRET_BYTES} bytes: use the server's full secret"
            )
        health_url = self.raw("LKPS_LIVEKIT_HEALTH_URL")
        if health_url is not None:
            health_url = self.url("LKPS_LIVEKIT_HEALTH_URL", health_url, ("https", "http"))
        elif livekit_url:
            health_url = livekit_health_url(livekit_url)

        mode = self.choice("LKPS_IDENTITY_MODE", "entra", ("entra", "gateway"))
        tenant = self.guid("LKPS_ENTRA_TENANT_ID", self.raw("LKPS_ENTRA_TENANT_ID"))
        audiences = self.listing("LKPS_ENTRA_AUDIENCE", "")
        authority = self.url(
            "LKPS_ENTRA_AUTHORITY", self.text("LKPS_ENTRA_AUTHORITY", DEFAULT_ENTRA_AUTHORITY), ("https",)
        )
        if mode == "entra":
            if tenant is None:
                self.problems.append(
                    "LKPS_ENTRA_TENANT_ID is not set: identity mode 'entra' validates tokens of one tenant;"
                    " set the tenant GUID or use LKPS_IDENTITY_MODE=gateway"
                )
            if not audiences:
                self.problems.append(
                    "LKPS_ENTRA_AUDIENCE is not set: list the platform app's client ID and app ID URI"
                    " (comma-separated), e.g. '<app-id>,api://<app-id>'"
                )
        issuers = self.listing("LKPS_ENTRA_ISSUERS", "")
        if not issuers and tenant is not None:
            # v2 tokens name the authority; v1 tokens (accessTokenAcceptedVersion 1) name sts.windows.net.
            issuers = (f"{authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/")

        graph_client_id = self.raw("LKPS_GRAPH_CLIENT_ID")
        graph_client_secret = self.raw("LKPS_GRAPH_CLIENT_SECRET")
        graph_tenant = self.guid("LKPS_GRAPH_TENANT_ID", self.raw("LKPS_GRAPH_TENANT_ID")) or tenant
        if bool(graph_client_id) != bool(graph_client_secret):
            self.problems.append(
                "LKPS_GRAPH_CLIENT_ID and LKPS_GRAPH_CLIENT_SECRET must be set together:"
                " set both for a client secret, or neither for managed/workload identity"
            )
        if graph_client_id and graph_tenant is None:
            self.problems.append(
                "LKPS_GRAPH_TENANT_ID is not set: a Graph client secret needs its tenant;"
                " set it or LKPS_ENTRA_TENANT_ID"
            )

        log_format = self.choice("LKPS_LOG_FORMAT", "json", ("json", "text"))
        settings = Settings(
            livekit_url=livekit_url,
            livekit_api_key=api_key,
            livekit_api_secret=api_secret,
            livekit_health_url=health_url or "",
            database_url=self.database_url(),
            identity_mode="entra" if mode == "entra" else "gateway",
            entra_tenant_id=tenant,
            entra_audiences=audiences,
            entra_authority=authority,
            entra_issuers=issuers,
            entra_register_role=self.env.get("LKPS_ENTRA_REGISTER_ROLE", "Agent.Register").strip(),
            entra_session_role=self.env.get("LKPS_ENTRA_SESSION_ROLE", "Session.Start").strip(),
            entra_cwid_claims=self.listing("LKPS_ENTRA_CWID_CLAIMS", "cwid,oid"),
            entra_leeway=self.number("LKPS_ENTRA_LEEWAY", 60, int, 0, 600),
            gateway_client_id_header=self.text("LKPS_GATEWAY_CLIENT_ID_HEADER", "client-id").lower(),
            gateway_user_id_header=self.text("LKPS_GATEWAY_USER_ID_HEADER", "user-id").lower(),
            gateway_email_header=self.text("LKPS_GATEWAY_EMAIL_HEADER", "x-user-email").lower(),
            gateway_profile_headers=tuple(
                h.lower() for h in self.listing("LKPS_GATEWAY_PROFILE_HEADERS", "user-profile,x-user-profile")
            ),
            ca_file=self.ca_file(),
            graph_url=self.url(
                "LKPS_GRAPH_URL", self.text("LKPS_GRAPH_URL", DEFAULT_GRAPH_URL), ("https", "http")
            ),
            graph_scope=self.text("LKPS_GRAPH_SCOPE", DEFAULT_GRAPH_SCOPE),
            graph_tenant_id=graph_tenant,
            graph_client_id=graph_client_id,
            graph_client_secret=graph_client_secret,
            graph_cache_ttl=self.number("LKPS_GRAPH_CACHE_TTL", 300.0, float, 0, 86400),
            graph_negative_cache_ttl=self.number("LKPS_GRAPH_NEGATIVE_CACHE_TTL", 30.0, float, 0, 86400),
            graph_timeout=self.number("LKPS_GRAPH_TIMEOUT", 5.0, float, 0.1, 60),
            registry_cache_ttl=self.number("LKPS_REGISTRY_CACHE_TTL", 30.0, float, 0, 3600),
            agent_token_ttl=self.number("LKPS_AGENT_TOKEN_TTL", 3600, int, 60, 86400),
            participant_token_ttl=self.number("LKPS_PARTICIPANT_TOKEN_TTL", 3600, int, 60, 86400),
            audit_queue_size=self.number("LKPS_AUDIT_QUEUE_SIZE", 100_000, int, 1, 10_000_000),
            audit_batch_size=self.number("LKPS_AUDIT_BATCH_SIZE", 500, int, 1, 10_000),
            audit_flush_timeout=self.number("LKPS_AUDIT_FLUSH_TIMEOUT", 10.0, float, 0, 600),
            webhook_batch_size=self.number("LKPS_WEBHOOK_BATCH_SIZE", 500, int, 1, 10_000),
            webhook_write_timeout=self.number("LKPS_WEBHOOK_WRITE_TIMEOUT", 10.0, float, 0.1, 600),
            health_timeout=self.number("LKPS_HEALTH_TIMEOUT", 2.0, float, 0.1, 60),
            health_cache_ttl=self.number("LKPS_HEALTH_CACHE_TTL", 1.0, float, 0, 60),
            migrate_on_start=self.flag("LKPS_MIGRATE_ON_START", False),
            log_level=self.choice("LKPS_LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
            log_format="json" if log_format == "json" else "text",
            otlp_endpoint=self.raw("OTEL_EXPORTER_OTLP_ENDPOINT"),
            service_name=self.text("OTEL_SERVICE_NAME", "lkps"),
            speedups=self.speedups(),
        )
        if self.problems:
            raise SettingsError(self.problems)
        return settings


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
