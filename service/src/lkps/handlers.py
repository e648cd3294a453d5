"""The four endpoints: health, agent registration, session start and LiveKit webhooks."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from . import __version__
from .audit import AuditWriter, Registration, Revocation
from .errors import ApiError, bad_request
from .graph import ClientAuthorizer, GraphUnavailableError
from .health import HealthChecker
from .identity import Identity, IdentityResolver, MissingRoleError
from .jobs import JobFacts
from .registry import AgentRecord, AgentRegistry
from .responses import ApiResponse
from .room_names import RoomNames
from .settings import Settings
from .tokens import RoomConfig, TokenMinter
from .webhook_auth import WebhookVerifier
from .webhooks import HANDLED_EVENTS, WebhookWriter, stored_event

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_METADATA_KEYS = 50
MAX_METADATA_BYTES = 10 * 1024
# Room names carry the caller's CWID; anything outside this set is replaced so names stay URL- and log-safe.
_UNSAFE_CWID = re.compile(r"[^A-Za-z0-9._@]")
_IDENTITY_FIELDS = ("participant_name", "participant_identity", "participant_cwid")


@dataclass
class Handlers:
    settings: Settings
    identity: IdentityResolver
    minter: TokenMinter
    registry: AgentRegistry
    authorizer: ClientAuthorizer | None
    audit: AuditWriter
    webhook_verifier: WebhookVerifier
    webhook_writer: WebhookWriter
    health: HealthChecker
    clock: Callable[[], float] = time.time
    room_names: RoomNames = field(default_factory=RoomNames)

    async def get_health(self, request: Request) -> Response:
        reason = await self.health.check()
        timestamp = _iso(self.clock())
        if reason is None:
            log.debug("health ok")
            return ApiResponse({"status": "healthy", "timestamp": timestamp, "version": __version__})
        log.debug("health failed", extra={"reason": reason})
        return ApiResponse({"status": "unhealthy", "reason": reason, "timestamp": timestamp}, status_code=503)

    async def register_agent(self, request: Request) -> Response:
        try:
            caller = await self.identity.resolve(request.headers, "register")
        except MissingRoleError as exc:
            self._revoke(exc.app_id)
            raise
        body = await _json_object(request, allow_empty=True)
        enforce = _enforce_client_authz(body)
        agent_id = _agent_app_id(caller, self.settings)
        now = self.clock()
        issued = int(now)
        ttl = self.settings.agent_token_ttl
        # One UUID names both the token's worker identity and its audit row, so either leads to the other.
        registration_id = _uuid4()
        worker_identity = f"agent-{agent_id}-{registration_id}"
        token = self.minter.agent_token(identity=worker_identity, name=agent_id, now=issued, ttl=ttl)
        # The audit row states exactly the token's nbf/exp (whole seconds).
        issued_at = dt.datetime.fromtimestamp(issued, dt.timezone.utc)
        expires_at = issued_at + dt.timedelta(seconds=ttl)  # cheaper than another fromtimestamp
        registered_at = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        self.registry.record(AgentRecord(agent_id, enforce, registered_at, expires_at))
        self.audit.submit(
            Registration(
                id=registration_id,
                entra_app_id=agent_id,
                worker_identity=worker_identity,
                requested_by=caller.user_id,
                client_id=caller.client_id,
                requester_email=caller.email,
                identity_mode=self.settings.identity_mode,
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
        return ApiResponse(
            {"livekit_token": token, "livekit_url": self.settings.livekit_url, "expires_in": ttl}
        )

    async def start_session(self, request: Request) -> Response:
        caller = await self.identity.resolve(request.headers, "session")
        body = await _json_object(request, allow_empty=False)
        agent_id = _uuid_field(body)
        metadata = _metadata(body)
        cwid = self._cwid(caller)
        now = self.clock()
        requested_at = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        agent = _require_active(agent_id, await self.registry.lookup(agent_id, requested_at), now)
        if agent.enforce_client_authz:
            await self._authorize(agent_id, caller)
        room = self.room_names.new(cwid, agent_id, int(now))
        identity = caller.email or caller.user_id or cwid
        name = caller.display_name or caller.email or cwid
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
            metadata=None,
            now=int(now),
            ttl=self.settings.participant_token_ttl,
        )
        self.audit.submit(
            JobFacts(
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
        return ApiResponse(
            {"room_name": room, "livekit_url": self.settings.livekit_url, "participant_token": token}
        )

    async def livekit_webhook(self, request: Request) -> Response:
        body = await _read_body(request)
        item = self.webhook_verifier.verify(body, request.headers.get("authorization"), stored_event)
        if item.event not in HANDLED_EVENTS:
            return ApiResponse({"status": "ignored", "event": item.event})
        is_new = await self.webhook_writer.store(item, self.settings.webhook_write_timeout)
        log.info(
            "webhook",
            extra={"event": item.event, "id": item.id, "room": item.room_name, "duplicate": not is_new},
        )
        return ApiResponse({"status": "processed" if is_new else "duplicate", "event": item.event})

    def _revoke(self, app_id: str | None) -> None:
        """A valid application token without the register role: the app's earlier registrations no longer
        stand (its worker drains and exits), so its sessions are refused from now on, not dispatched."""
        try:
            agent_id = _canonical_guid(app_id or "")
        except ValueError:
            return  # not an application token, or no app ID: nothing to revoke
        at = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        self.registry.revoke(agent_id, at)
        self.audit.submit(Revocation(entra_app_id=agent_id, revoked_at=at))
        log.warning("agent registration refused: agent revoked", extra={"agent_entra_app_id": agent_id})

    def _cwid(self, caller: Identity) -> str:
        raw = caller.cwid or caller.user_id
        if not raw:
            header = (
                self.settings.gateway_user_id_header if self.settings.identity_mode == "gateway" else None
            )
            raise bad_request(
                "the caller has no CWID or user ID: the gateway must send the profile or the user-id header"
                if header
                else "the token carries none of the configured CWID claims (LKPS_ENTRA_CWID_CLAIMS)",
                header or "Authorization",
            )
        return _safe_cwid(raw)

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


def _require_active(agent_id: str, agent: AgentRecord | None, now: float) -> AgentRecord:
    """The agent, if a session may be dispatched to it: registered, not revoked, its token unexpired."""
    if agent is None:
        detail = f"agent {agent_id} has not registered: start the agent (it registers through the SDK) first"
    elif agent.revoked_at is not None:
        detail = (
            f"agent {agent_id}'s registration was revoked at {_iso(agent.revoked_at.timestamp())}: its last"
            " registration was refused (the Entra app role was removed); restore the role and restart the"
            " agent"
        )
    elif agent.expires_at.timestamp() <= now:
        detail = (
            f"agent {agent_id}'s registration expired at {_iso(agent.expires_at.timestamp())}: the agent"
            " stopped renewing; is it running?"
        )
    else:
        return agent
    raise ApiError(404, "agent_not_registered", detail, "agent_entra_app_id")


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    # ASGI messages read directly: Starlette's ``request.stream()`` async generator costs more than the
    # JSON parsing for bodies this small, which nearly always arrive in one message.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes", "body")


async def _json_object(request: Request, *, allow_empty: bool) -> dict[str, Any]:
    raw = await _read_body(request)
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("the request body is empty: send a JSON object", "body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("the request body is not valid JSON: send a JSON object", "body") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "body")
    return body


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


def _agent_app_id(caller: Identity, settings: Settings) -> str:
    field = settings.gateway_client_id_header if settings.identity_mode == "gateway" else "Authorization"
    if not caller.client_id:
        raise bad_request(
            f"the agent's Entra app (client) ID is missing: the {field} header must carry it"
            if settings.identity_mode == "gateway"
            else "the token carries no azp/appid claim: use an application (client credentials) token",
            field,
        )
    try:
        return _canonical_guid(caller.client_id)
    except ValueError:
        raise bad_request(f"{field} is not an Entra app (client) ID: it must be a GUID", field) from None


def _uuid4() -> str:
    """A random (version 4) UUID in canonical form: what ``str(uuid.uuid4())`` gives, at under half the cost
    (no ``UUID`` object between the random bytes and the text)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.lru_cache(maxsize=4096)
def _safe_cwid(raw: str) -> str:
    """``raw`` with characters outside the room-name-safe set replaced, at most 64 long. Cached: the same
    callers come back, and the substitution costs more than the lookup."""
    return _UNSAFE_CWID.sub("_", raw)[:64]


@functools.lru_cache(maxsize=4096)
def _canonical_guid(value: str) -> str:
    """``value`` as a canonical lower-case GUID (``ValueError`` if it is none). Cached: the same few agent
    IDs arrive on every request, and parsing one costs more than the lookup."""
    return str(uuid.UUID(value))


def _uuid_field(body: dict[str, Any]) -> str:
    value = body.get("agent_entra_app_id")
    if value is None:
        raise bad_request(
            "agent_entra_app_id is required: the agent's Entra app (client) ID", "agent_entra_app_id"
        )
    if not isinstance(value, str):
        raise bad_request("agent_entra_app_id must be a string GUID", "agent_entra_app_id")
    try:
        return _canonical_guid(value)
    except ValueError:
        raise bad_request(
            "agent_entra_app_id is not a valid GUID: use the agent's Entra app (client) ID",
            "agent_entra_app_id",
        ) from None


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
    size = len(orjson.dumps(metadata))
    if size > MAX_METADATA_BYTES:
        raise bad_request(
            f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed", "metadata"
        )
    # The service's identity fields win: a caller must not impersonate another participant to the agent.
    return {k: v for k, v in metadata.items() if k not in _IDENTITY_FIELDS}
