"""Pre-signed LiveKit webhook deliveries for the ingestion benchmark: distinct event ids, whole sessions.

Each delivery is what LiveKit sends: the protobuf ``WebhookEvent`` as JSON, and a raw JWT in
``Authorization`` (livekit-api's ``AccessToken`` with the body's sha256 claim). Signing is the slow part, so
it runs in a process pool before the timed runs.
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from google.protobuf import json_format
from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

EVENTS_PER_SESSION = 6
T0 = 1_800_000_000


def _participant(
    identity: str,
    kind: ParticipantInfo.Kind,
    at: int,
    reason: DisconnectReason = DisconnectReason.UNKNOWN_REASON,
) -> ParticipantInfo:
    return ParticipantInfo(
        sid=f"PA_{identity[:8]}",
        identity=identity,
        kind=kind,
        joined_at=at,
        joined_at_ms=at * 1000,
        disconnect_reason=reason,
    )


def session_events(agent_app_id: str, serial: int) -> list[WebhookEvent]:
    """One room's lifecycle as LiveKit reports it: started, client and agent join and leave, finished."""
    room_name = f"BENCH{serial}-{agent_app_id}-{T0}-{serial % 0xFFFF:04x}"
    room = Room(sid=f"RM_{serial:012d}", name=room_name, creation_time=T0, creation_time_ms=T0 * 1000)
    client = "caller@example.com"
    agent = f"agent-AJ_{serial:012d}"
    standard, agent_kind = ParticipantInfo.Kind.STANDARD, ParticipantInfo.Kind.AGENT
    steps: list[tuple[str, int, ParticipantInfo | None]] = [
        ("room_started", T0, None),
        ("participant_joined", T0 + 1, _participant(client, standard, T0 + 1)),
        ("participant_joined", T0 + 2, _participant(agent, agent_kind, T0 + 2)),
        (
            "participant_left",
            T0 + 60,
            _participant(client, standard, T0 + 1, DisconnectReason.CLIENT_INITIATED),
        ),
        ("participant_left", T0 + 61, _participant(agent, agent_kind, T0 + 2, DisconnectReason.ROOM_DELETED)),
        ("room_finished", T0 + 90, None),
    ]
    events = []
    for kind, at, participant in steps:
        event = WebhookEvent(event=kind, id=f"EV_{uuid.uuid4().hex}", created_at=at, room=room)
        if participant is not None:
            event.participant.CopyFrom(participant)
        events.append(event)
    return events


def _sign_sessions(args: tuple[str, str, str, int, int]) -> list[str]:
    api_key, api_secret, agent_app_id, first, count = args
    lines: list[str] = []
    for serial in range(first, first + count):
        for event in session_events(agent_app_id, serial):
            body = json_format.MessageToJson(event, indent=None)
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            lines.append(api.AccessToken(api_key, api_secret).with_sha256(digest).to_jwt())
            lines.append(body)
    return lines


def signed_deliveries(
    api_key: str, api_secret: str, agent_app_id: str, first_session: int, sessions: int
) -> list[tuple[str, str]]:
    """``sessions`` whole sessions' deliveries, in order, as (Authorization, body) pairs."""
    lines = _sign_sessions((api_key, api_secret, agent_app_id, first_session, sessions))
    return list(zip(lines[0::2], lines[1::2], strict=True))


def write_deliveries(
    path: Path, *, events: int, first_session: int, api_key: str, api_secret: str, agent_app_id: str
) -> int:
    """Write at least ``events`` deliveries (whole sessions) to ``path`` for bench/lua/replay.lua.

    Returns how many sessions were written; ``first_session`` keeps room names distinct across files.
    """
    sessions = -(-events // EVENTS_PER_SESSION)
    workers = max(1, len(os.sched_getaffinity(0)))
    chunk = -(-sessions // workers)
    jobs = [
        (api_key, api_secret, agent_app_id, first_session + start, min(chunk, sessions - start))
        for start in range(0, sessions, chunk)
    ]
    # spawn, not fork: this process runs the stand-ins' event loops in threads
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
        path.open("w", encoding="utf-8") as out,
    ):
        for lines in pool.map(_sign_sessions, jobs):
            out.write("\n".join(lines))
            out.write("\n")
    return sessions
