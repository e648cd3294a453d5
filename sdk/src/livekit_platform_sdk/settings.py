"""The SDK's settings: one field per environment variable (its name, default, bounds and reference text),
read once by ``Settings.from_env()``; every problem is reported at once, naming the variable and the fix."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from .envsettings import EnvSettings, Flag, HttpUrl, SettingsError

__all__ = ["EnvSettings", "Settings", "SettingsError"]

logger = logging.getLogger("livekit_platform_sdk")


class Settings(EnvSettings):
    """What the SDK needs to obtain, renew and use a platform-issued LiveKit token."""

    subject: ClassVar[str] = "livekit-platform-sdk"
    prefix: ClassVar[str | None] = "LIVEKIT_PLATFORM_"

    platform_url: HttpUrl = Field(
        validation_alias="LIVEKIT_PLATFORM_URL",
        title="the base URL of the LiveKit Platform Service, e.g. https://platform.example.com",
        description="Base URL of the LiveKit Platform Service (`https://host[:port][/path]`). "
        "The SDK calls `{url}/api/agent/register` with the agent's Entra token, so `http://` is refused "
        "except to this machine (`127.0.0.1`, `::1`, `localhost`), and so is a URL with a user name, "
        "password, query or fragment.",
        json_schema_extra={"group": "Platform"},
    )
    scope: str = Field(
        validation_alias="LIVEKIT_PLATFORM_SCOPE",
        title="the Entra scope of the platform's app registration, e.g. api://<platform-app-id>/.default",
        description="Entra scope of the platform's app registration, `api://<platform-app-id>/.default`. "
        "The agent's Entra token is requested for this scope.",
        json_schema_extra={"group": "Platform"},
    )
    enforce_client_authz: Flag = Field(
        True,
        validation_alias="LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ",
        description="Sent as `service_config.enforce_client_authz` at registration: when true, only client "
        "apps pre-authorized on this agent's app registration may start sessions with it "
        "([authorization](../authorization.md)).",
        json_schema_extra={"group": "Platform"},
    )
    agent_name: str | None = Field(
        None,
        validation_alias="LIVEKIT_PLATFORM_AGENT_NAME",
        description="Deprecated; leave it unset. The worker's LiveKit agent name is its Entra app (client) "
        "ID, which the platform binds to its identity: nothing chooses it. If set, it must be that app ID "
        "(any GUID spelling; a deprecation warning is logged), or the worker refuses to start.",
        json_schema_extra={"group": "Platform", "default_text": "unset"},
    )
    http_timeout: float = Field(
        10.0,
        ge=0.1,
        validation_alias="LIVEKIT_PLATFORM_HTTP_TIMEOUT",
        description="Seconds for one call to the platform. Platform calls honour "
        "`HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.",
        json_schema_extra={"group": "Timing and retries", "unit": "seconds"},
    )
    register_attempts: int = Field(
        8,
        ge=1,
        validation_alias="LIVEKIT_PLATFORM_REGISTER_ATTEMPTS",
        description="Attempts for the first registration at startup before the worker gives up.",
        json_schema_extra={"group": "Timing and retries"},
    )
    retry_initial_delay: float = Field(
        1.0,
        ge=0,
        validation_alias="LIVEKIT_PLATFORM_RETRY_INITIAL_DELAY",
        description="First backoff delay; it doubles per attempt, with ±20 % jitter.",
        json_schema_extra={"group": "Timing and retries", "unit": "seconds"},
    )
    retry_max_delay: float = Field(
        30.0,
        ge=0,
        validation_alias="LIVEKIT_PLATFORM_RETRY_MAX_DELAY",
        description="Cap on one backoff delay. A `Retry-After` from the platform is honoured when longer.",
        json_schema_extra={"group": "Timing and retries", "unit": "seconds"},
    )
    renew_margin: float = Field(
        300.0,
        ge=0,
        validation_alias="LIVEKIT_PLATFORM_RENEW_MARGIN",
        description="Renew this long before the token expires, but never before half its lifetime: renewal "
        "runs at `max(issued + lifetime/2, expiry - margin)`.",
        json_schema_extra={"group": "Timing and retries", "unit": "seconds"},
    )
    readiness_port: int = Field(
        8082,
        ge=0,
        le=65535,
        validation_alias="LIVEKIT_PLATFORM_READINESS_PORT",
        description="Port of `GET /ready` (200 while registered with LiveKit on a valid platform token, "
        "else 503 with the reason). `0` turns the endpoint off.",
        json_schema_extra={"group": "Readiness endpoint"},
    )
    readiness_host: str = Field(
        "0.0.0.0",  # noqa: S104 (a probe endpoint in a pod must be reachable by the kubelet)
        validation_alias="LIVEKIT_PLATFORM_READINESS_HOST",
        description="Interface the readiness endpoint binds to (the kubelet must reach it).",
        json_schema_extra={"group": "Readiness endpoint"},
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        validation_alias="LIVEKIT_PLATFORM_METRICS_PORT",
        description="Port of livekit-agents' Prometheus endpoint (`GET /metrics`, its `prometheus_port`), "
        "which serves livekit-agents' metrics and the SDK's `livekit_platform_*` metrics "
        "([metrics](../agent-guide.md#metrics)). `0` leaves it off; the chart sets `9100`.",
        json_schema_extra={"group": "Metrics"},
    )
    azure_client_id: str | None = Field(
        None,
        validation_alias="AZURE_CLIENT_ID",
        description="The agent's Entra app (client) ID, or the managed identity's client ID. The worker's "
        "LiveKit agent name is the app ID in the Entra token this selects. On AKS the workload identity "
        "webhook sets it from the service account annotation.",
        json_schema_extra={"group": "Entra identity"},
    )
    azure_tenant_id: str | None = Field(
        None,
        validation_alias="AZURE_TENANT_ID",
        description="The Entra tenant (set by the workload identity webhook on AKS).",
        json_schema_extra={"group": "Entra identity"},
    )
    azure_client_secret: SecretStr | None = Field(
        None,
        validation_alias="AZURE_CLIENT_SECRET",
        description="A client secret: with `AZURE_CLIENT_ID` and `AZURE_TENANT_ID` it selects the service "
        "principal mode.",
        json_schema_extra={"group": "Entra identity"},
    )
    azure_federated_token_file: str | None = Field(
        None,
        validation_alias="AZURE_FEDERATED_TOKEN_FILE",
        description="The projected service-account token (workload identity mode; set by the webhook on "
        "AKS).",
        json_schema_extra={"group": "Entra identity"},
    )
    azure_authority_host: str | None = Field(
        None,
        validation_alias="AZURE_AUTHORITY_HOST",
        description="Entra authority host (sovereign clouds, or a local stand-in).",
        json_schema_extra={"group": "Entra identity", "default_text": "`https://login.microsoftonline.com`"},
    )

    def __init__(self, **values: Any) -> None:
        # a URL's user:password@ must not reach an error message, which shows the value it refuses
        for key in ("platform_url", "LIVEKIT_PLATFORM_URL"):
            value = values.get(key)
            if isinstance(value, str):
                values[key] = _without_userinfo(value)
        super().__init__(**values)

    @field_validator("platform_url")
    @classmethod
    def _platform_url_is_safe_for_tokens(cls, value: str) -> str:
        parts = urlsplit(value)
        if "@" in parts.netloc:
            raise ValueError(
                "holds a user name or password: remove the `user:password@` part (the platform "
                "authenticates the agent by its Entra token)"
            )
        if parts.query or parts.fragment:
            raise ValueError("has a query or fragment: set it to the base URL, e.g. https://host")
        host = parts.hostname or ""
        if parts.scheme == "http" and not _is_loopback(host):
            raise ValueError(
                f"uses http:// to {host}, which is not this machine: the agent's Entra token and LiveKit "
                f"token would cross the network unencrypted. Set it to https://{parts.netloc}"
                f"{parts.path}; http:// is accepted only for 127.0.0.1, ::1 and localhost"
            )
        return value

    @property
    def register_url(self) -> str:
        return self.platform_url.rstrip("/") + "/api/agent/register"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """``EnvSettings.from_env``, then a warning for each ``LIVEKIT_PLATFORM_*`` variable that is none."""
        settings = super().from_env(environ)
        for warning in cls.unknown_variables(environ):
            logger.warning(warning)
        return settings


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="<hidden>@" + parts.netloc.rpartition("@")[2]).geturl()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
