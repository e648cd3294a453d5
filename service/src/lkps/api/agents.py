"""``POST /api/agent/register``: an agent trades its Entra identity for a worker token, good at the platform's
relay (``lkps.relay``), which it connects to as if it were LiveKit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..auth.identity import Identity, IdentityResolver, MissingRoleError
from ..domain.agents import AgentRecord, AgentRegistry
from ..domain.audit import Registration, Revocation
from ..domain.ids import Ids, developer_agent_id
from ..domain.times import utc
from ..domain.tokens import TokenMinter
from ..errors import ApiError, bad_request
from ..observability.metrics import Metrics
from ..settings import Settings
from ..storage.audit_writer import AuditWriter
from .body import json_object
from .headers import header
from .responses import JsonResponse

log = logging.getLogger(__name__)
# How many ways of reaching the service (scheme, Host, root path) the answer's relay URL is remembered for.
_RELAY_URLS = 64
_HOST_CHARS = 255  # a DNS name's longest: a longer Host is answered but not remembered


@dataclass
class AgentRegistration:
    settings: Settings
    identity: IdentityResolver
    minter: TokenMinter
    registry: AgentRegistry
    audit: AuditWriter
    ids: Ids
    json: JsonResponse
    clock: Callable[[], float]
    metrics: Metrics
    _relay_urls: dict[tuple[str, str | None, str], str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # read once: a settings attribute costs more than a plain one, on every request
        self._ttl = self.settings.agent_token_ttl
        self._ttl_delta = dt.timedelta(seconds=self._ttl)
        self._relay_url_setting = self.settings.relay_url
        self._identity_mode = self.settings.identity_mode

    async def register(self, request: Request) -> Response:
        # Every refusal comes from here, counted by its error (in this frame: a coroutine of its own for the
        # counting cost a request more than the counting).
        try:
            try:
                caller = await self.identity.resolve(request.headers, "register")
            except MissingRoleError as exc:
                self._revoke(exc.app_id)
                raise
            enforce = _enforce_client_authz(await json_object(request, allow_empty=True))
            agent_id = self._agent_app_id(caller)
        except ApiError as exc:
            self.metrics.registrations.labels(exc.error).inc()
            raise
        now = self.clock()
        issued = int(now)
        ttl = self._ttl
        # One UUID names both the token's worker identity and its audit row, so either leads to the other.
        registration_id = self.ids.new()
        worker_identity = f"agent-{agent_id}-{registration_id}"
        token = self.minter.agent_token(identity=worker_identity, name=agent_id, now=issued, ttl=ttl)
        self.metrics.agent_tokens.inc()
        # The audit row states exactly the token's nbf/exp (whole seconds).
        issued_at = utc(issued)
        expires_at, registered_at = issued_at + self._ttl_delta, utc(now)  # (adding: cheaper than utc())
        self.registry.record(AgentRecord(agent_id, enforce, registered_at, expires_at))
        self.audit.submit(
            Registration(
                id=registration_id,
                entra_app_id=agent_id,
                worker_identity=worker_identity,
                requested_by=caller.user_id,
                client_id=caller.client_id,
                requester_email=caller.email,
                identity_mode=self._identity_mode,
                enforce_client_authz=enforce,
                issued_at=issued_at,
                expires_at=expires_at,
                registered_at=registered_at,
            )
        )
        log.info(
            "agent registered",
            extra={"agent_entra_app_id": agent_id, "worker_identity": worker_identity, "expires_in": ttl},
        )
        answer: dict[str, Any] = {
            "livekit_token": token,
            "livekit_url": self._relay_url(request),
            "expires_in": ttl,
        }
        if caller.delegated:
            # Not the token's client ID: the worker must announce this name (the SDK takes it from here).
            answer["agent_name"] = agent_id
        self.metrics.registered.inc()
        return self.json(answer)

    def _relay_url(self, request: Request) -> str:
        """Where the worker connects: the relay (``LKPS_RELAY_URL``, else this service as the agent reached
        it), never LiveKit itself, which does not take agent tokens."""
        if self._relay_url_setting:
            return self._relay_url_setting
        # Building Starlette's URL costs more than the rest of the answer: remember it per way the service
        # was reached (a handful in practice), at most _RELAY_URLS of them (the Host header is the caller's).
        scope = request.scope
        host = header(scope, b"host")
        key = (scope["scheme"], host, scope.get("root_path", ""))
        known = self._relay_urls.get(key)
        if known is not None:
            return known
        url = request.base_url
        answer = str(url.replace(scheme="wss" if url.scheme == "https" else "ws")).rstrip("/")
        if len(self._relay_urls) < _RELAY_URLS and len(host or "") <= _HOST_CHARS:
            self._relay_urls[key] = answer
        return answer

    def _revoke(self, app_id: str | None) -> None:
        """A valid application token without the register role: the app's earlier registrations no longer
        stand (its worker drains and exits), so its sessions are refused from now on, not dispatched."""
        try:
            agent_id = self.ids.canonical(app_id or "")
        except ValueError:
            return  # not an application token, or no app ID: nothing to revoke
        at = utc(self.clock())
        self.registry.revoke(agent_id, at)
        self.audit.submit(Revocation(entra_app_id=agent_id, revoked_at=at))
        self.metrics.revocations.inc()
        log.warning("agent registration refused: agent revoked", extra={"agent_entra_app_id": agent_id})

    def _agent_app_id(self, caller: Identity) -> str:
        if not caller.delegated and caller.client_id:
            try:
                return self.ids.canonical(caller.client_id)
            except ValueError:
                pass
        # Refused (or a user's token): the field and the fix named only now, off the usual path.
        gateway = self.settings.identity_mode == "gateway"
        field = self.settings.gateway_client_id_header if gateway else "Authorization"
        if caller.delegated:
            # A user's token names the app it was obtained through (the Azure CLI's, shared by every
            # developer), not an agent: the user registers their own developer agent, derived from their oid.
            try:
                return developer_agent_id(self.ids.canonical(caller.user_id or ""))
            except ValueError:
                raise bad_request(
                    "the user token carries no oid (the user's object ID): a user registers the developer"
                    " agent derived from it; use an Entra access token for the platform's scope",
                    field,
                ) from None
        if not caller.client_id:
            raise bad_request(
                f"the agent's Entra app (client) ID is missing: the {field} header must carry it"
                if gateway
                else "the token carries no azp/appid claim: use an application (client credentials) token",
                field,
            )
        raise bad_request(
            f"{field} is not an Entra app (client) ID: it must be a GUID in its standard form (8-4-4-4-12"
            " hex digits)",
            field,
        )


def _enforce_client_authz(body: dict[str, Any]) -> bool:
    config = body.get("service_config")
    if config is None:
        return True
    if not isinstance(config, dict):
        raise bad_request("service_config must be an object", "service_config")
    value = config.get("enforce_client_authz", True)
    if not isinstance(value, bool):
        raise bad_request(
            "service_config.enforce_client_authz must be a boolean (true or false)",
            "service_config.enforce_client_authz",
        )
    return value
