"""What the LiveKit stand-in remembers: connection attempts, workers, jobs, rooms and webhook deliveries.

Inspection returns deep copies of these records, so a test can hold one while the server keeps changing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id(prefix: str) -> str:
    """An id shaped like LiveKit's (``RM_…`` room, ``PA_…`` participant, ``AJ_…`` job, ``AW_…`` worker)."""
    return f"{prefix}_{secrets.token_hex(6)}"


@dataclass
class TokenClaims:
    """The verified claims of a bearer token (never the token itself: ``fingerprint`` is its sha256)."""

    identity: str
    issuer: str
    expires_at: int
    not_before: int | None
    video: dict[str, Any]
    payload: dict[str, Any]
    fingerprint: str

    @property
    def agent_grant(self) -> bool:
        return self.video.get("agent") is True


@dataclass
class ConnectionAttempt:
    """One upgrade request to ``/agent``; ``claims`` is set only when the signature verified."""

    at: dt.datetime
    accepted: bool
    reason: str
    status: int
    fingerprint: str | None
    claims: TokenClaims | None
    worker_id: str | None = None


@dataclass
class JobTransition:
    status: str
    error: str
    at: dt.datetime


@dataclass
class Job:
    """A dispatch of one agent into one room; ``status`` is a ``livekit.protocol.agent.JobStatus`` name."""

    id: str
    dispatch_id: str
    agent_name: str
    room_name: str
    room_sid: str
    metadata: str
    status: str = "JS_PENDING"
    error: str = ""
    worker_id: str | None = None
    participant_identity: str = ""
    token_fingerprint: str | None = None
    offered_to: list[str] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)
    history: list[JobTransition] = field(default_factory=list)
    created_at: dt.datetime = field(default_factory=utcnow)

    @property
    def ended(self) -> bool:
        return self.status in ("JS_SUCCESS", "JS_FAILED", "JS_CANCELLED")

    @property
    def statuses(self) -> list[str]:
        return [t.status for t in self.history]


@dataclass
class Worker:
    """One registration: a reconnecting agent server registers again and gets a new id."""

    id: str
    agent_name: str
    connection: ConnectionAttempt
    version: str
    namespace: str
    deployment: str
    connected: bool = True
    status: str = "WS_AVAILABLE"
    load: float = 0.0
    job_count: int = 0
    jobs: list[str] = field(default_factory=list)
    permissions: dict[str, Any] = field(default_factory=dict)
    registered_at: dt.datetime = field(default_factory=utcnow)
    disconnected_at: dt.datetime | None = None

    @property
    def claims(self) -> TokenClaims:
        assert self.connection.claims is not None  # only verified connections register
        return self.connection.claims


@dataclass
class Participant:
    identity: str
    sid: str
    kind: str  # ParticipantInfo.Kind name: STANDARD or AGENT
    name: str = ""
    metadata: str = ""
    job_id: str | None = None
    joined_at: dt.datetime = field(default_factory=utcnow)
    left_at: dt.datetime | None = None


@dataclass
class Room:
    name: str
    sid: str
    max_participants: int
    departure_timeout: int
    empty_timeout: int
    metadata: str
    participants: dict[str, Participant] = field(default_factory=dict)
    departed: list[Participant] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    created_at: dt.datetime = field(default_factory=utcnow)
    closed_at: dt.datetime | None = None
    close_reason: str = ""

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def standard_participants(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.kind != "AGENT"]


@dataclass
class JoinResult:
    room_name: str
    room_sid: str
    identity: str
    participant_sid: str
    created_room: bool
    job_ids: list[str]


@dataclass
class WebhookDelivery:
    """One webhook event and how its delivery went: ``status`` is pending, delivered or failed."""

    id: str
    event: str
    room_name: str
    participant_identity: str
    body: str
    status: str = "pending"
    attempts: int = 0
    response_statuses: list[int] = field(default_factory=list)
    last_error: str = ""
    created_at: dt.datetime = field(default_factory=utcnow)
    delivered_at: dt.datetime | None = None


def to_jsonable(record: Any) -> Any:
    """A record (or list/dict of them) as JSON-ready data, datetimes as ISO strings."""
    if isinstance(record, list):
        return [to_jsonable(r) for r in record]
    if isinstance(record, dict):
        return {k: to_jsonable(v) for k, v in record.items()}
    if isinstance(record, dt.datetime):
        return record.isoformat()
    if hasattr(record, "__dataclass_fields__"):
        return to_jsonable(asdict(record))
    return record
