"""LiveKit webhook events for the service tests: a room named as the service names rooms, at a fixed time."""

from __future__ import annotations

import uuid

from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

T0 = 1_800_000_000


def room_name(agent_id: str) -> str:
    return f"JDOE1-{agent_id}-{T0}-ab12"


def event(
    kind: str,
    room: str,
    at: int,
    *,
    participant: ParticipantInfo | None = None,
    event_id: str | None = None,
) -> WebhookEvent:
    message = WebhookEvent(
        event=kind,
        id=event_id or f"EV_{uuid.uuid4().hex[:12]}",
        created_at=at,
        room=Room(sid="RM_" + room[-4:], name=room, creation_time=T0, creation_time_ms=T0 * 1000),
    )
    if participant is not None:
        message.participant.CopyFrom(participant)
    return message
