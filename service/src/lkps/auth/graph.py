"""Client-to-agent authorization: is the client pre-authorized for the agent's ``access_as_client`` scope?

The answer comes from the agent's app registration in Microsoft Graph v1.0, fetched with an azure-identity
credential and cached per agent so that session start rarely waits on Graph.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError

from ..observability.metrics import Metrics
from ..settings import Settings

log = logging.getLogger(__name__)

CLIENT_SCOPE = "access_as_client"


class GraphUnavailableError(Exception):
    """Graph (or the token for it) could not be reached; the decision is unknown."""


class ClientAuthorizer(Protocol):
    async def is_authorized(self, agent_app_id: str, client_app_id: str) -> bool: ...

    def denial_reason(self, agent_app_id: str, client_app_id: str) -> str:
        """Why the last check refused, and what fixes it (no I/O: it reads what the check fetched)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class AgentApi:
    """What Graph says about an agent's app registration, reduced to what the check needs."""

    fetched_at: float
    found: bool
    scope_id: str | None = None
    pre_authorized: dict[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, client_app_id: str) -> bool:
        if self.scope_id is None:
            return False
        return self.scope_id in self.pre_authorized.get(client_app_id.lower(), frozenset())

    def denial(self, agent_app_id: str, client_app_id: str) -> str:
        if not self.found:
            # A managed identity is a service principal with no app registration: it has no API to expose.
            return (
                f"agent {agent_app_id} has no app registration in Microsoft Graph, so it exposes no"
                f" {CLIENT_SCOPE} scope (a managed identity cannot): run the agent as an app registration"
                " with a federated credential, or register it with enforce_client_authz=false"
            )
        if self.scope_id is None:
            return (
                f"agent {agent_app_id}'s app registration exposes no enabled {CLIENT_SCOPE} scope: add it"
                " under 'Expose an API' of the agent's app registration"
            )
        return (
            f"client {client_app_id} is not pre-authorized for agent {agent_app_id}'s {CLIENT_SCOPE} scope:"
            " add it under 'Expose an API > Authorized client applications' of the agent's app registration"
        )

    @classmethod
    def parse(cls, document: dict[str, Any], fetched_at: float, scope_value: str) -> AgentApi:
        api = document.get("api") or {}
        scope_id = None
        for scope in api.get("oauth2PermissionScopes") or []:
            # A disabled scope grants nothing, as in Entra itself.
            if scope.get("value") == scope_value and scope.get("isEnabled", True) is not False:
                scope_id = str(scope.get("id", "")).lower() or None
        pre_authorized: dict[str, frozenset[str]] = {}
        for app in api.get("preAuthorizedApplications") or []:
            app_id = str(app.get("appId", "")).lower()
            # v1.0 names the list delegatedPermissionIds (beta: permissionIds); the URL pins v1.0.
            ids = frozenset(str(i).lower() for i in app.get("delegatedPermissionIds") or [])
            pre_authorized[app_id] = pre_authorized.get(app_id, frozenset()) | ids
        return cls(fetched_at=fetched_at, found=True, scope_id=scope_id, pre_authorized=pre_authorized)


# Agents whose Graph answer is kept (only registered agents that enforce client authorization are looked up).
MAX_CACHED_AGENTS = 10_000


class GraphAuthorizer:
    """Checks Graph with an azure-identity credential; allowed answers are cached for ``graph_cache_ttl``,
    denials are re-checked after ``graph_negative_cache_ttl`` so a newly pre-authorized client gets in soon.
    """

    def __init__(
        self,
        settings: Settings,
        credential: AsyncTokenCredential,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._base = settings.graph_url
        self._scope = settings.graph_scope
        self._ttl = settings.graph_cache_ttl
        self._negative_ttl = settings.graph_negative_cache_ttl
        self._credential = credential
        self._http = http or httpx.AsyncClient(timeout=settings.graph_timeout)
        self._owns_http = http is None
        self._clock = clock
        self._cache: dict[str, AgentApi] = {}
        self._inflight: dict[str, asyncio.Future[AgentApi]] = {}
        self.fetches = 0

    async def is_authorized(self, agent_app_id: str, client_app_id: str) -> bool:
        agent = agent_app_id.lower()
        entry = self._cache.get(agent)
        if entry is not None:
            age = self._clock() - entry.fetched_at
            allowed = entry.allows(client_app_id)
            if (allowed and age < self._ttl) or age < self._negative_ttl:
                if self._metrics is not None:
                    self._metrics.graph_cache_hits.inc()
                return allowed
        entry = await self._fetch_once(agent)
        return entry.allows(client_app_id)

    def denial_reason(self, agent_app_id: str, client_app_id: str) -> str:
        entry = self._cache.get(agent_app_id.lower()) or AgentApi(fetched_at=0.0, found=True)
        return entry.denial(agent_app_id, client_app_id)

    async def _fetch_once(self, agent: str) -> AgentApi:
        # Concurrent session starts for one agent share a single Graph call.
        pending = self._inflight.get(agent)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[AgentApi] = asyncio.get_running_loop().create_future()
        self._inflight[agent] = future
        try:
            entry = await self._fetch(agent)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        finally:
            del self._inflight[agent]
        future.set_result(entry)
        self._cache.pop(agent, None)
        self._cache[agent] = entry
        if len(self._cache) > MAX_CACHED_AGENTS:
            del self._cache[next(iter(self._cache))]  # the longest unrefreshed
        return entry

    async def _fetch(self, agent: str) -> AgentApi:
        if self._metrics is None:
            return await self._call_graph(agent)
        started = time.perf_counter()
        outcome = "error"
        try:
            entry = await self._call_graph(agent)
            outcome = "ok" if entry.found else "not_found"
            return entry
        finally:
            self._metrics.graph_calls.labels(outcome).inc()
            self._metrics.graph_duration.observe(time.perf_counter() - started)

    async def _call_graph(self, agent: str) -> AgentApi:
        self.fetches += 1
        try:
            token = await self._credential.get_token(self._scope)
            response = await self._http.get(
                f"{self._base}/applications(appId='{agent}')",
                params={"$select": "api"},
                headers={"Authorization": f"Bearer {token.token}", "Accept": "application/json"},
            )
        except (AzureError, httpx.HTTPError) as exc:
            log.warning(
                "graph lookup failed", extra={"agent_entra_app_id": agent, "error": type(exc).__name__}
            )
            raise GraphUnavailableError(type(exc).__name__) from None
        now = self._clock()
        if response.status_code == 404:
            log.info("agent app registration not found in graph", extra={"agent_entra_app_id": agent})
            return AgentApi(fetched_at=now, found=False)
        if response.status_code != 200:
            log.warning(
                "graph lookup failed", extra={"agent_entra_app_id": agent, "status": response.status_code}
            )
            raise GraphUnavailableError(f"HTTP {response.status_code}")
        try:
            document = response.json()
            return AgentApi.parse(document, now, CLIENT_SCOPE)
        except (ValueError, AttributeError, TypeError):
            raise GraphUnavailableError("unexpected Graph response") from None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
        await self._credential.close()


def build_credential(settings: Settings) -> AsyncTokenCredential:
    """A client secret when configured, else the default chain (workload or managed identity in AKS)."""
    from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

    options: dict[str, Any] = {"authority": settings.entra_authority}
    if settings.ca_file:
        options["connection_verify"] = settings.ca_file
    if settings.graph_client_id and settings.graph_client_secret and settings.graph_tenant_id:
        return ClientSecretCredential(
            settings.graph_tenant_id,
            settings.graph_client_id,
            settings.graph_client_secret.get_secret_value(),
            **options,
        )
    return DefaultAzureCredential(**options)
