"""The agent's Entra identity: picks the azure-identity credential and reports every way it tried."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .redaction import redact
from .settings import Settings

if TYPE_CHECKING:
    # azure-identity (and msal under it) is imported when a credential is built: job processes import the SDK
    # with the agent module but never authenticate, so they skip its import time and memory
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.exceptions import ClientAuthenticationError

SERVICE_PRINCIPAL = (
    "service principal (ClientSecretCredential from AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID)"
)
DEFAULT_CHAIN = "DefaultAzureCredential (workload identity, managed identity, Azure CLI, ...)"
_SP_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")
AZURE_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"
AZURE_IDENTITY_LOGGER = "azure.identity"


def quiet_azure_http_logging() -> None:
    """azure-core logs every request and response at INFO, and livekit-agents' CLI enables INFO: without this
    each token request floods the agent's logs. An application that set the logger's level keeps it."""
    http_log = logging.getLogger(AZURE_HTTP_LOGGER)
    if http_log.level == logging.NOTSET:
        http_log.setLevel(logging.WARNING)


def quiet_azure_identity_logging() -> None:
    """azure-identity logs each failed token request at WARNING with the authority's error text, which a
    misrouted proxy can fill with the request (client secret or assertion included). The SDK reports the
    failure itself, redacted, as a ``CredentialError``; an application that set the logger's level keeps
    it."""
    identity_log = logging.getLogger(AZURE_IDENTITY_LOGGER)
    if identity_log.level == logging.NOTSET:
        identity_log.setLevel(logging.ERROR)


quiet_azure_http_logging()
quiet_azure_identity_logging()


class CredentialError(RuntimeError):
    """No way of obtaining an Entra token worked; ``attempts`` holds (way, why it failed) per way tried."""

    def __init__(self, scope: str, attempts: list[tuple[str, str]]) -> None:
        self.scope = scope
        self.attempts = attempts
        lines = [f"could not obtain an Entra token for LIVEKIT_PLATFORM_SCOPE={scope!r}; tried:"]
        for way, why in attempts:
            reason = why.strip().replace("\n", "\n      ")
            lines.append(f"  - {way}: {reason}")
        lines.append(
            "Fix: set AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID for a service principal, "
            "or run where workload identity / managed identity is configured, "
            "or `az login` for local development."
        )
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class EntraToken:
    """An Entra access token for the platform scope; the value is kept out of repr and logs."""

    value: str = field(repr=False)
    expires_on: int
    claims: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def app_id(self) -> str | None:
        """The calling app's client id (``appid`` in v1 tokens, ``azp`` in v2 tokens)."""
        value = self.claims.get("appid") or self.claims.get("azp")
        return str(value) if value else None


def unverified_claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only for reading our own identity (the platform verifies)."""
    try:
        payload = jwt.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


class PlatformIdentity:
    """Gets Entra tokens for the platform scope with the credential the environment calls for.

    Service principal when AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID are all set, otherwise
    DefaultAzureCredential (workload identity on AKS, managed identity, Azure CLI). A ``credential`` passed in
    is used as is (the seam for applications with their own credential); ``credential_options`` go to the
    credential the SDK builds (e.g. ``connection_verify`` for a private CA).
    """

    def __init__(
        self,
        settings: Settings,
        credential: AsyncTokenCredential | None = None,
        **credential_options: Any,
    ) -> None:
        self._scope = settings.scope
        self._skipped: list[tuple[str, str]] = []
        secret = settings.azure_client_secret
        # an authority (or a proxy) may echo the token request, secret or client assertion, into its error
        self._secrets = [secret.get_secret_value()] if secret is not None else []
        if credential is not None:
            self.way = type(credential).__name__
            self._credential = credential
        elif settings.azure_client_id and settings.azure_client_secret and settings.azure_tenant_id:
            from azure.identity.aio import ClientSecretCredential

            self.way = SERVICE_PRINCIPAL
            kwargs: dict[str, Any] = dict(credential_options)
            if settings.azure_authority_host:
                kwargs["authority"] = settings.azure_authority_host
            self._credential = ClientSecretCredential(
                settings.azure_tenant_id,
                settings.azure_client_id,
                settings.azure_client_secret.get_secret_value(),
                **kwargs,
            )
        else:
            missing = [
                name
                for name, value in zip(
                    _SP_VARIABLES,
                    (settings.azure_client_id, settings.azure_client_secret, settings.azure_tenant_id),
                    strict=False,
                )
                if not value
            ]
            self._skipped.append((SERVICE_PRINCIPAL, f"not configured: {', '.join(missing)} not set"))
            from azure.identity.aio import DefaultAzureCredential

            self.way = DEFAULT_CHAIN
            kwargs = dict(credential_options)
            if settings.azure_authority_host:
                kwargs["authority"] = settings.azure_authority_host
            self._credential = DefaultAzureCredential(**kwargs)

    async def get_token(self) -> EntraToken:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            token = await self._credential.get_token(self._scope)
        except ClientAuthenticationError as exc:
            reason = _reason(exc, self._secrets)
            raise CredentialError(self._scope, [*self._skipped, (self.way, reason)]) from None
        return EntraToken(token.token, int(token.expires_on), unverified_claims(token.token))

    async def close(self) -> None:
        await self._credential.close()


def _reason(exc: ClientAuthenticationError, secrets: list[str]) -> str:
    # azure-identity puts the per-credential history of a chain in .message (str() would add the response
    # body); the authority's error_description in it is text from outside, so it is redacted too
    message = getattr(exc, "message", None) or type(exc).__name__
    return redact(str(message), secrets, limit=4000, keep_newlines=True)
