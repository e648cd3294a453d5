"""The SDK's settings, read once from the environment; every error names the variable and the fix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message lists each variable and how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "livekit-platform-sdk is not configured correctly:\n" + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class Settings:
    """What the SDK needs to obtain, renew and use a platform-issued LiveKit token."""

    platform_url: str
    """LIVEKIT_PLATFORM_URL: base URL of the LiveKit Platform Service."""
    scope: str
    """LIVEKIT_PLATFORM_SCOPE: Entra scope of the platform's app registration (``api://<id>/.default``)."""
    enforce_client_authz: bool = True
    """LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ: ask the platform to check which clients may start this agent."""
    agent_name: str | None = None
    """LIVEKIT_PLATFORM_AGENT_NAME: overrides the LiveKit agent name (default: the Entra app client id)."""
    http_timeout: float = 10.0
    """LIVEKIT_PLATFORM_HTTP_TIMEOUT: seconds for one call to the platform."""
    register_attempts: int = 8
    """LIVEKIT_PLATFORM_REGISTER_ATTEMPTS: attempts for the first registration before giving up."""
    retry_initial_delay: float = 1.0
    """LIVEKIT_PLATFORM_RETRY_INITIAL_DELAY: first backoff delay in seconds (doubles per attempt)."""
    retry_max_delay: float = 30.0
    """LIVEKIT_PLATFORM_RETRY_MAX_DELAY: cap on one backoff delay in seconds."""
    renew_margin: float = 300.0
    """LIVEKIT_PLATFORM_RENEW_MARGIN: renew this many seconds before expiry (not before half-life)."""
    readiness_port: int = 8082
    """LIVEKIT_PLATFORM_READINESS_PORT: port of the ``/ready`` endpoint; 0 turns it off."""
    readiness_host: str = "0.0.0.0"  # noqa: S104 (a probe endpoint in a pod must be reachable by the kubelet)
    """LIVEKIT_PLATFORM_READINESS_HOST: interface the readiness endpoint binds to."""
    azure_client_id: str | None = None
    """AZURE_CLIENT_ID: the agent's Entra app (client) id."""
    azure_tenant_id: str | None = None
    """AZURE_TENANT_ID: the Entra tenant."""
    azure_client_secret: str | None = None
    """AZURE_CLIENT_SECRET: a client secret (service principal mode); never logged."""
    azure_authority_host: str | None = None
    """AZURE_AUTHORITY_HOST: Entra authority, e.g. ``https://login.microsoftonline.com``."""
    azure_federated_token_file: str | None = None
    """AZURE_FEDERATED_TOKEN_FILE: projected service-account token (workload identity mode)."""

    def __repr__(self) -> str:
        # the dataclass repr would print the client secret
        secret = "set" if self.azure_client_secret else "unset"
        return (
            f"Settings(platform_url={self.platform_url!r}, scope={self.scope!r}, "
            f"enforce_client_authz={self.enforce_client_authz}, agent_name={self.agent_name!r}, "
            f"azure_client_id={self.azure_client_id!r}, azure_tenant_id={self.azure_tenant_id!r}, "
            f"azure_client_secret=<{secret}>, azure_authority_host={self.azure_authority_host!r})"
        )

    @property
    def register_url(self) -> str:
        return self.platform_url.rstrip("/") + "/api/agent/register"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting; raise one ``SettingsError`` listing all problems found."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        platform_url = reader.url("LIVEKIT_PLATFORM_URL", "the base URL of the LiveKit Platform Service")
        scope = reader.required(
            "LIVEKIT_PLATFORM_SCOPE",
            "the Entra scope of the platform's app registration, e.g. api://<platform-app-id>/.default",
        )
        settings = cls(
            platform_url=platform_url,
            scope=scope,
            enforce_client_authz=reader.boolean("LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ", True),
            agent_name=reader.optional("LIVEKIT_PLATFORM_AGENT_NAME"),
            http_timeout=reader.seconds("LIVEKIT_PLATFORM_HTTP_TIMEOUT", 10.0, minimum=0.1),
            register_attempts=reader.integer("LIVEKIT_PLATFORM_REGISTER_ATTEMPTS", 8, minimum=1),
            retry_initial_delay=reader.seconds("LIVEKIT_PLATFORM_RETRY_INITIAL_DELAY", 1.0, minimum=0),
            retry_max_delay=reader.seconds("LIVEKIT_PLATFORM_RETRY_MAX_DELAY", 30.0, minimum=0),
            renew_margin=reader.seconds("LIVEKIT_PLATFORM_RENEW_MARGIN", 300.0, minimum=0),
            readiness_port=reader.integer("LIVEKIT_PLATFORM_READINESS_PORT", 8082, minimum=0, maximum=65535),
            readiness_host=reader.optional("LIVEKIT_PLATFORM_READINESS_HOST") or cls.readiness_host,
            azure_client_id=reader.optional("AZURE_CLIENT_ID"),
            azure_tenant_id=reader.optional("AZURE_TENANT_ID"),
            azure_client_secret=reader.optional("AZURE_CLIENT_SECRET"),
            azure_authority_host=reader.optional("AZURE_AUTHORITY_HOST"),
            azure_federated_token_file=reader.optional("AZURE_FEDERATED_TOKEN_FILE"),
        )
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings


class _Reader:
    """Collects problems instead of failing on the first, so one run shows everything to fix."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str, what: str) -> str:
        value = self.optional(name)
        if value is None:
            self.problems.append(f"{name} is not set: set it to {what}")
            return ""
        return value

    def url(self, name: str, what: str) -> str:
        value = self.required(name, what)
        if value:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                self.problems.append(
                    f"{name}={value!r} is not an http(s) URL: set it to {what}, e.g. https://platform.example.com"
                )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.problems.append(f"{name}={value!r} is not a boolean: set it to true or false")
        return default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not an integer: set it to an integer or unset it")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.problems.append(f"{name}={raw!r} is out of range: set it to an integer {bounds}")
            return default
        return value

    def seconds(self, name: str, default: float, *, minimum: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number: set it to a number of seconds or unset it")
            return default
        if not value >= minimum:  # also rejects nan
            self.problems.append(f"{name}={raw!r} is out of range: set it to at least {minimum} seconds")
            return default
        return value
