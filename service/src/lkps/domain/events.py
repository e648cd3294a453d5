"""LiveKit webhook events as the service reads them, and what it stores of each: the event, and the facts it
contributes to its session."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple

from livekit.protocol.models import DisconnectReason, ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from .room_names import agent_app_id_from_room
from .sessions import SessionFacts

# The events that move a session; others are acknowledged and not stored.
HANDLED_EVENTS = frozenset({"room_started", "participant_joined", "participant_left", "room_finished"})
MAX_ROOM_NAME = 256  # sessions.room_name; the service's own room names are far shorter
MAX_EVENT_ID = 128  # webhook_events.id
_CLIENT_KINDS = frozenset({ParticipantInfo.Kind.STANDARD, ParticipantInfo.Kind.SIP})
_REASONS = {value.number: value.name for value in DisconnectReason.DESCRIPTOR.values}


class Participant(NamedTuple):
    """The ``ParticipantInfo`` fields the service reads (protobuf's defaults when unset)."""

    identity: str = ""
    kind: int = ParticipantInfo.Kind.STANDARD
    joined_at: int = 0
    joined_at_ms: int = 0
    disconnect_reason: int = DisconnectReason.UNKNOWN_REASON


class LiveKitEvent(NamedTuple):
    """The ``WebhookEvent`` fields the service reads (protobuf's defaults when unset)."""

    event: str
    id: str
    created_at: int
    room_name: str
    room_sid: str
    room_creation_time: int
    room_creation_time_ms: int
    participant: Participant

    @classmethod
    def from_message(cls, message: WebhookEvent) -> LiveKitEvent:
        room, participant = message.room, message.participant
        return cls(
            event=message.event,
            id=message.id,
            created_at=message.created_at,
            room_name=room.name,
            room_sid=room.sid,
            room_creation_time=room.creation_time,
            room_creation_time_ms=room.creation_time_ms,
            participant=Participant(
                identity=participant.identity,
                kind=participant.kind,
                joined_at=participant.joined_at,
                joined_at_ms=participant.joined_at_ms,
                disconnect_reason=participant.disconnect_reason,
            ),
        )


class Delivery(NamedTuple):
    """A verified webhook: its event, and the body as sent (stored verbatim)."""

    event: LiveKitEvent
    payload: str


class StoredEvent(NamedTuple):
    """What is stored of a delivery: a ``webhook_events`` row, and the facts it adds to its session."""

    id: str
    event: str
    room_name: str | None
    created_at: dt.datetime | None
    payload: str
    facts: SessionFacts | None


def stored_event(delivery: Delivery) -> StoredEvent:
    event, payload = delivery
    room_name = _text(event.room_name)
    at = _time(event.created_at)
    # LiveKit always sets an id; a body hash keeps idempotency for any sender that does not.
    # Cut as the column would be, so the id compared for duplicates is the one stored.
    event_id = event.id or "sha256:" + hashlib.sha256(payload.encode()).hexdigest()
    tracked = event.event in HANDLED_EVENTS and event.room_name and len(event.room_name) <= MAX_ROOM_NAME
    return StoredEvent(
        _text(event_id)[:MAX_EVENT_ID],
        event.event,
        room_name or None,
        at,
        payload,
        session_facts(event, room_name, at) if tracked else None,
    )


def session_facts(event: LiveKitEvent, room_name: str, at: dt.datetime | None) -> SessionFacts:
    """The facts a handled event (one of :data:`HANDLED_EVENTS`) adds to the session of ``room_name``."""
    room_sid = _text(event.room_sid) or None
    agent_id = agent_app_id_from_room(room_name)
    kind = event.event
    if kind == "room_started":
        created = _time(event.room_creation_time, event.room_creation_time_ms) or at
        return SessionFacts(room_name, room_sid, agent_id, room_created_at=created)
    if kind == "room_finished":
        return SessionFacts(room_name, room_sid, agent_id, finished_at=at)
    participant = event.participant
    identity = _text(participant.identity) or None
    is_agent = participant.kind == ParticipantInfo.Kind.AGENT
    if not is_agent and participant.kind not in _CLIENT_KINDS:
        # Egress/ingress participants are not part of the session's lifecycle.
        return SessionFacts(room_name, room_sid, agent_id)
    if kind == "participant_joined":
        joined = _time(participant.joined_at, participant.joined_at_ms) or at
        if is_agent:
            return SessionFacts(
                room_name, room_sid, agent_id, agent_joined_at=joined, agent_identity=identity
            )
        return SessionFacts(
            room_name, room_sid, agent_id, participant_joined_at=joined, participant_identity=identity
        )
    reason = _REASONS.get(participant.disconnect_reason, str(participant.disconnect_reason))
    if is_agent:
        return SessionFacts(
            room_name,
            room_sid,
            agent_id,
            agent_left_at=at,
            agent_disconnect_reason=reason,
            agent_identity=identity,
        )
    return SessionFacts(
        room_name,
        room_sid,
        agent_id,
        participant_left_at=at,
        disconnect_reason=reason,
        participant_identity=identity,
    )


def _time(seconds: int, millis: int = 0) -> dt.datetime | None:
    """A time from an event's seconds or (finer) milliseconds; ``None`` if unset or past datetime's range."""
    try:
        if millis:
            return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)
        if seconds:
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        pass
    return None


def _text(value: str) -> str:
    """A string from an event as PostgreSQL can store it: text cannot hold NUL, and one refused value would
    fail every event stored with it."""
    return value.replace("\x00", "") if "\x00" in value else value  # (finding one is cheaper than a copy)
