"""``POST /api/session/start``: a client gets a room that dispatches the agent, and a token to join it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..auth.graph import ClientAuthorizer, GraphUnavailableError
from ..auth.identity import Identity, IdentityResolver
from ..domain.agents import AgentRegistry, dispatchable
from ..domain.ids import Ids
from ..domain.room_names import RoomNames
from ..domain.sessions import SessionFacts
from ..domain.times import utc
from ..domain.tokens import RoomConfig, TokenMinter
from ..errors import ApiError, bad_request
from ..observability.metrics import Metrics
from ..settings import Settings
from ..storage.audit_writer import AuditWriter
from .body import depth_exceeded, json_object
from .responses import JsonResponse

log = logging.getLogger(__name__)

MAX_METADATA_KEYS = 50
MAX_METADATA_BYTES = 10 * 1024
MAX_METADATA_DEPTH = 32  # arrays and objects inside metadata (orjson, which forwards it, stops at 254)
# What the service tells the agent about the participant; a caller's metadata cannot override them.
_IDENTITY_FIELDS = frozenset(("participant_name", "participant_identity", "participant_cwid"))


@dataclass
class SessionStart:
    settings: Settings
    identity: IdentityResolver
    minter: TokenMinter
    registry: AgentRegistry
    authorizer: ClientAuthorizer | None
    room_names: RoomNames
    audit: AuditWriter
    ids: Ids
    json: JsonResponse
    clock: Callable[[], float]
    metrics: Metrics

    def __post_init__(self) -> None:
        # read once: a settings attribute costs more than a plain one, on every request
        self._ttl = self.settings.participant_token_ttl
        self._livekit_url = self.settings.livekit_url

    async def start(self, request: Request) -> Response:
        # Every refusal comes from here, counted by its error (in this frame: a coroutine of its own for the
        # counting cost a request more than the counting).
        try:
            caller = await self.identity.resolve(request.headers, "session")
            body = await json_object(request, allow_empty=False)
            agent_id = self._agent_app_id(body)
            metadata = _metadata(body)
            cwid = self._cwid(caller)
            now = self.clock()
            requested_at = utc(now)
            agent = dispatchable(agent_id, await self.registry.lookup(agent_id, requested_at), now)
            if agent.enforce_client_authz:
                await self._authorize(agent_id, caller)
            room = self.room_names.new(cwid, agent_id, int(now))
        except ApiError as exc:
            self.metrics.session_starts.labels(exc.error).inc()
            if exc.error == "database_unavailable":
                self.metrics.database_error("registry")
            raise
        identity = caller.email or caller.user_id or cwid
        name = caller.display_name or caller.email or cwid
        # The LiveKit job's metadata, as the dispatched agent receives it.
        job_metadata = {
            **metadata,
            "participant_name": name,
            "participant_identity": identity,
            "participant_cwid": cwid,
        }
        token = self.minter.participant_token(
            identity=identity,
            name=name,
            room=room,
            room_config=RoomConfig(agent_name=agent_id, agent_metadata=orjson.dumps(job_metadata).decode()),
            now=int(now),
            ttl=self._ttl,
        )
        self.metrics.participant_tokens.inc()
        self.audit.submit(
            SessionFacts(
                room_name=room,
                agent_entra_app_id=agent_id,
                client_id=caller.client_id,
                participant_identity=identity,
                participant_cwid=cwid,
                requested_at=requested_at,
            )
        )
        log.info(
            "session started",
            extra={"room": room, "agent_entra_app_id": agent_id, "client_id": caller.client_id},
        )
        self.metrics.sessions_started.inc()
        return self.json({"room_name": room, "livekit_url": self._livekit_url, "participant_token": token})

    def _agent_app_id(self, body: dict[str, Any]) -> str:
        value = body.get("agent_entra_app_id")
        if value is None:
            raise bad_request(
                "agent_entra_app_id is required: the agent's Entra app (client) ID", "agent_entra_app_id"
            )
        if not isinstance(value, str):
            raise bad_request("agent_entra_app_id must be a string GUID", "agent_entra_app_id")
        try:
            return self.ids.canonical(value)
        except ValueError:
            raise bad_request(
                "agent_entra_app_id is not a GUID in its standard form (8-4-4-4-12 hex digits, e.g."
                " 0f6a3c1e-7d7b-4a8e-9a59-1c2d3e4f5a6b): use the agent's Entra app (client) ID as Entra shows"
                " it",
                "agent_entra_app_id",
            ) from None

    def _cwid(self, caller: Identity) -> str:
        raw = caller.cwid or caller.user_id
        if not raw:
            gateway = self.settings.identity_mode == "gateway"
            raise bad_request(
                "the caller has no CWID or user ID: the gateway must send the profile or the user-id header"
                if gateway
                else "the token carries none of the configured CWID claims (LKPS_ENTRA_CWID_CLAIMS)",
                self.settings.gateway_user_id_header if gateway else "Authorization",
            )
        return self.room_names.cwid(raw)

    async def _authorize(self, agent_id: str, caller: Identity) -> None:
        if not caller.client_id:
            field = (
                self.settings.gateway_client_id_header
                if self.settings.identity_mode == "gateway"
                else "Authorization"
            )
            raise bad_request(
                f"agent {agent_id} only accepts pre-authorized clients, and the caller's client ID is"
                f" missing: send the {field} header",
                field,
            )
        assert self.authorizer is not None, "create_app always builds an authorizer"
        try:
            allowed = await self.authorizer.is_authorized(agent_id, caller.client_id)
        except GraphUnavailableError:
            raise ApiError(
                503,
                "graph_unavailable",
                "client-to-agent authorization could not be checked in Microsoft Graph; retry shortly",
            ) from None
        if not allowed:
            raise ApiError(
                403,
                "client_not_authorized",
                self.authorizer.denial_reason(agent_id, caller.client_id),
                "agent_entra_app_id",
            )


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be a JSON object of key-value pairs", "metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise bad_request(
            f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed", "metadata"
        )
    try:
        text: bytes | None = orjson.dumps(metadata)
    except orjson.JSONEncodeError:
        text = None  # too deep for orjson (refused below), or not JSON (raised again after the depth check)
    too_deep = depth_exceeded(metadata, "metadata", MAX_METADATA_DEPTH, text)
    if too_deep is not None:
        raise bad_request(
            f"{too_deep} is nested more than {MAX_METADATA_DEPTH} levels inside metadata: send flatter"
            " metadata",
            too_deep,
        )
    size = len(orjson.dumps(metadata) if text is None else text)
    if size > MAX_METADATA_BYTES:
        raise bad_request(
            f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed", "metadata"
        )
    # The service's identity fields win: a caller must not impersonate another participant to the agent.
    if _IDENTITY_FIELDS.isdisjoint(metadata):
        return metadata
    return {k: v for k, v in metadata.items() if k not in _IDENTITY_FIELDS}
