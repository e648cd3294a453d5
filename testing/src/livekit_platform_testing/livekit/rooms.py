"""The LiveKit stand-in's rooms: who is in them, when they close, and the webhooks that tell about it.

Callers hold the stand-in's state lock; nothing here does I/O beyond queueing webhooks.
"""

from __future__ import annotations

import time

from livekit.protocol import models
from livekit.protocol.room import RoomConfiguration
from livekit.protocol.webhook import WebhookEvent

from .records import Participant, Room, new_id, utcnow
from .webhooks import WebhookSender


def room_proto(room: Room) -> models.Room:
    created = room.created_at.timestamp()
    return models.Room(
        sid=room.sid,
        name=room.name,
        empty_timeout=room.empty_timeout,
        departure_timeout=room.departure_timeout,
        max_participants=room.max_participants,
        creation_time=int(created),
        creation_time_ms=int(created * 1000),
        metadata=room.metadata,
        num_participants=len(room.participants),
    )


def participant_proto(participant: Participant, *, joined: bool) -> models.ParticipantInfo:
    joined_at = participant.joined_at.timestamp()
    return models.ParticipantInfo(
        sid=participant.sid,
        identity=participant.identity,
        name=participant.name,
        metadata=participant.metadata,
        state=models.ParticipantInfo.ACTIVE if joined else models.ParticipantInfo.DISCONNECTED,
        joined_at=int(joined_at),
        joined_at_ms=int(joined_at * 1000),
        kind=participant.kind,
    )


class RoomRegistry:
    """Open and closed rooms; a room with no standard participant closes after its departure timeout.

    Agents do not keep a room open and do not count towards ``max_participants``, as on LiveKit where agent
    participants are "dependent" ones.
    """

    def __init__(
        self, webhooks: WebhookSender | None, *, departure_timeout: float, empty_timeout: int
    ) -> None:
        self._webhooks = webhooks
        self._departure_timeout = departure_timeout
        self._empty_timeout = empty_timeout
        self.rooms: list[Room] = []
        self._open: dict[str, Room] = {}
        # monotonic clock readings: they survive a restart of the server loop
        self._empty_since: dict[str, float] = {}
        self._departure: dict[str, float] = {}

    def open_room(self, name: str) -> Room | None:
        return self._open.get(name)

    def open_room_with_sid(self, name: str, sid: str) -> Room | None:
        room = self._open.get(name)
        return room if room is not None and room.sid == sid else None

    def create(self, name: str, config: RoomConfiguration | None) -> Room:
        """A new open room; only the creating token's ``roomConfig`` applies, as on LiveKit."""
        room = Room(
            name=name,
            sid=new_id("RM"),
            max_participants=config.max_participants if config else 0,
            departure_timeout=(config.departure_timeout if config else 0) or int(self._departure_timeout),
            empty_timeout=(config.empty_timeout if config else 0) or self._empty_timeout,
            metadata=config.metadata if config else "",
        )
        # the stand-in's own default may be fractional (fast tests); a token's is whole seconds
        self._departure[room.sid] = (
            float(config.departure_timeout)
            if config and config.departure_timeout
            else self._departure_timeout
        )
        self.rooms.append(room)
        self._open[name] = room
        self._emit("room_started", room)
        return room

    def is_full_for(self, room: Room, identity: str) -> bool:
        return bool(
            room.max_participants
            and identity not in room.participants
            and len(room.standard_participants()) >= room.max_participants
        )

    def add(self, room: Room, participant: Participant) -> None:
        if participant.identity in room.participants:  # a duplicate identity replaces the old session
            self.remove(room, participant.identity)
        room.participants[participant.identity] = participant
        if participant.kind != "AGENT":
            self._empty_since.pop(room.sid, None)
        self._emit("participant_joined", room, participant_proto(participant, joined=True))

    def remove(self, room: Room, identity: str) -> None:
        participant = room.participants.pop(identity)
        participant.left_at = utcnow()
        room.departed.append(participant)
        self._emit("participant_left", room, participant_proto(participant, joined=False))
        if not room.standard_participants():
            self._empty_since.setdefault(room.sid, time.monotonic())

    def close(self, room: Room, reason: str) -> None:
        for identity in list(room.participants):
            self.remove(room, identity)
        room.closed_at = utcnow()
        room.close_reason = reason
        self._open.pop(room.name, None)
        self._empty_since.pop(room.sid, None)
        self._emit("room_finished", room)

    def due_for_closing(self, now: float) -> list[Room]:
        """Open rooms whose last standard participant left at least their departure timeout ago."""
        due = []
        for room in self._open.values():
            since = self._empty_since.get(room.sid)
            if since is not None and now - since >= self._departure.get(room.sid, 0.0):
                due.append(room)
        return due

    def _emit(self, event: str, room: Room, participant: models.ParticipantInfo | None = None) -> None:
        if self._webhooks is None:
            return
        message = WebhookEvent(
            event=event, room=room_proto(room), id=new_id("EV"), created_at=int(time.time())
        )
        if participant is not None:
            message.participant.CopyFrom(participant)
        self._webhooks.enqueue(message)
