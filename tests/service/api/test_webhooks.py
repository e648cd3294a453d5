"""POST /livekit/webhook: signature checks, the session lifecycle, duplicates and out-of-order delivery."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from typing import Any

import pytest
from livekit.protocol.models import DisconnectReason, ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from lkps.settings import Settings
from tests.support.service import assert_fast_webhooks, fetch_rows, new_agent_id, running_app, sign_webhook
from tests.support.webhook_events import T0, event, room_name

CLIENT = "jane.doe@example.com"


def client(at: int, reason: DisconnectReason = DisconnectReason.UNKNOWN_REASON) -> ParticipantInfo:
    return ParticipantInfo(
        sid="PA_client",
        identity=CLIENT,
        kind=ParticipantInfo.Kind.STANDARD,
        joined_at=at,
        joined_at_ms=at * 1000,
        disconnect_reason=reason,
    )


def agent(at: int, reason: DisconnectReason = DisconnectReason.UNKNOWN_REASON) -> ParticipantInfo:
    return ParticipantInfo(
        sid="PA_agent",
        identity="agent-AJ_1",
        kind=ParticipantInfo.Kind.AGENT,
        joined_at=at,
        joined_at_ms=at * 1000,
        disconnect_reason=reason,
    )


def full_session(room: str) -> list[WebhookEvent]:
    return [
        event("room_started", room, T0),
        event("participant_joined", room, T0 + 1, participant=client(T0 + 1)),
        event("participant_joined", room, T0 + 3, participant=agent(T0 + 3)),
        event(
            "participant_left", room, T0 + 60, participant=client(T0 + 1, DisconnectReason.CLIENT_INITIATED)
        ),
        event("participant_left", room, T0 + 61, participant=agent(T0 + 3, DisconnectReason.ROOM_DELETED)),
        event("room_finished", room, T0 + 90),
    ]


async def job(settings: Settings, room: str) -> dict[str, Any]:
    rows = await fetch_rows(settings.database_url, "SELECT * FROM sessions WHERE room_name = :r", r=room)
    assert len(rows) == 1, rows
    row = rows[0]
    row.pop("updated_at")
    return row


async def test_a_full_session_ends_completed_with_times_reason_and_durations(settings: Settings) -> None:
    agent_id = new_agent_id()
    room = room_name(agent_id)
    async with running_app(settings) as app:
        for message in full_session(room):
            response = await app.webhook(message)
            assert response.status_code == 200
            assert response.json() == {"status": "processed", "event": message.event}
        assert_fast_webhooks(app.services, 6)
    row = await job(settings, room)
    assert row["status"] == "completed"
    assert row["agent_entra_app_id"] == agent_id
    assert row["room_sid"] == "RM_ab12"
    assert row["participant_identity"] == CLIENT
    assert row["agent_identity"] == "agent-AJ_1"
    assert row["room_created_at"].timestamp() == T0
    assert row["participant_joined_at"].timestamp() == T0 + 1
    assert row["agent_joined_at"].timestamp() == T0 + 3
    assert row["participant_left_at"].timestamp() == T0 + 60
    assert row["finished_at"].timestamp() == T0 + 90
    assert row["disconnect_reason"] == "CLIENT_INITIATED"
    assert row["agent_disconnect_reason"] == "ROOM_DELETED"
    assert row["session_duration_s"] == 90
    assert row["participant_duration_s"] == 59
    assert row["agent_join_delay_s"] == 2


async def test_status_moves_through_room_created_participant_joined_active_completed(
    settings: Settings,
) -> None:
    room = room_name(new_agent_id())
    seen = []
    async with running_app(settings) as app:
        for message in full_session(room):
            await app.webhook(message)
            seen.append((await job(settings, room))["status"])
    assert seen == ["room_created", "participant_joined", "active", "completed", "completed", "completed"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_any_delivery_order_gives_the_same_row(settings: Settings, seed: int) -> None:
    agent_id = new_agent_id()
    in_order, shuffled = f"A{seed}-{agent_id}-{T0}-0001", f"B{seed}-{agent_id}-{T0}-0001"
    events = full_session(shuffled)
    random.Random(seed).shuffle(events)  # noqa: S311 - a reproducible order, not a secret
    async with running_app(settings) as app:
        for message in full_session(in_order):
            await app.webhook(message)
        for message in events:
            await app.webhook(message)
    expected, actual = await job(settings, in_order), await job(settings, shuffled)
    for row in (expected, actual):
        row.pop("room_name")
        row.pop("room_sid")
    assert actual == expected


async def test_a_repeated_event_id_is_acknowledged_and_changes_nothing(settings: Settings) -> None:
    room = room_name(new_agent_id())
    joined = event("participant_joined", room, T0 + 1, participant=client(T0 + 1), event_id="EV_same")
    # A forged "retry" with the same id but other content must not win either.
    replay = event("participant_joined", room, T0 + 500, participant=client(T0 + 500), event_id="EV_same")
    async with running_app(settings) as app:
        first = await app.webhook(joined)
        again = await app.webhook(joined)
        third = await app.webhook(replay)
    assert first.json()["status"] == "processed"
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert third.json()["status"] == "duplicate"
    row = await job(settings, room)
    assert row["participant_joined_at"].timestamp() == T0 + 1
    stored = await fetch_rows(settings.database_url, "SELECT id FROM webhook_events")
    assert stored == [{"id": "EV_same"}]


async def test_room_finished_without_the_agent_is_agent_never_joined(settings: Settings) -> None:
    room = room_name(new_agent_id())
    async with running_app(settings) as app:
        await app.webhook(event("room_started", room, T0))
        await app.webhook(event("participant_joined", room, T0 + 1, participant=client(T0 + 1)))
        await app.webhook(event("room_finished", room, T0 + 40))
    assert (await job(settings, room))["status"] == "agent_never_joined"


async def test_an_agent_join_delivered_after_room_finished_still_counts(settings: Settings) -> None:
    room = room_name(new_agent_id())
    async with running_app(settings) as app:
        await app.webhook(event("participant_joined", room, T0 + 1, participant=client(T0 + 1)))
        await app.webhook(event("room_finished", room, T0 + 40))
        assert (await job(settings, room))["status"] == "agent_never_joined"
        await app.webhook(event("participant_joined", room, T0 + 2, participant=agent(T0 + 2)))
    assert (await job(settings, room))["status"] == "completed"


async def test_an_agent_that_leaves_with_an_error_makes_the_session_failed(settings: Settings) -> None:
    room = room_name(new_agent_id())
    async with running_app(settings) as app:
        await app.webhook(event("participant_joined", room, T0 + 1, participant=client(T0 + 1)))
        await app.webhook(event("participant_joined", room, T0 + 2, participant=agent(T0 + 2)))
        left = agent(T0 + 2, DisconnectReason.AGENT_ERROR)
        await app.webhook(event("participant_left", room, T0 + 9, participant=left))
        await app.webhook(event("room_finished", room, T0 + 40))
    row = await job(settings, room)
    assert row["status"] == "failed"
    assert row["agent_disconnect_reason"] == "AGENT_ERROR"


async def test_webhooks_complete_the_row_session_start_created(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        room = (await app.start_session(agent_id)).json()["room_name"]
        await app.services.audit.flush()
        for message in full_session(room):
            await app.webhook(message)
    row = await job(settings, room)
    assert row["status"] == "completed"
    assert row["requested_at"] is not None
    assert row["participant_cwid"] == "JDOE1"


async def test_events_the_service_does_not_track_are_acknowledged_and_not_stored(settings: Settings) -> None:
    room = room_name(new_agent_id())
    async with running_app(settings) as app:
        response = await app.webhook(event("track_published", room, T0, participant=client(T0)))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "event": "track_published"}
    assert await fetch_rows(settings.database_url, "SELECT id FROM webhook_events") == []


async def test_a_tampered_body_is_401_and_not_stored(settings: Settings) -> None:
    room = room_name(new_agent_id())
    body, auth = sign_webhook(event("room_started", room, T0))
    tampered = body.replace("room_started", "room_finished")
    async with running_app(settings) as app:
        response = await app.client.post(
            "/livekit/webhook", content=tampered, headers={"Authorization": auth}
        )
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"
    assert await fetch_rows(settings.database_url, "SELECT id FROM webhook_events") == []


async def test_a_webhook_signed_with_another_secret_is_401(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.webhook(
            event("room_started", room_name(new_agent_id()), T0), api_secret="another-secret-" + "x" * 40
        )
    assert response.status_code == 401


async def test_a_webhook_without_authorization_is_401(settings: Settings) -> None:
    body, _ = sign_webhook(event("room_started", room_name(new_agent_id()), T0))
    async with running_app(settings) as app:
        response = await app.client.post("/livekit/webhook", content=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_concurrent_deliveries_share_batches_and_are_all_stored(settings: Settings) -> None:
    rooms = [room_name(new_agent_id()) for _ in range(40)]
    messages = list(itertools.chain.from_iterable(full_session(r) for r in rooms))
    async with running_app(settings) as app:
        responses = await asyncio.gather(*(app.webhook(m) for m in messages))
        await asyncio.gather(*(app.webhook(m) for m in messages[:50]))
        writer = app.services.webhook_writer
        assert writer.stored == len(messages)
        assert writer.duplicates == 50
        assert writer.batches < len(messages) + 50
    assert {r.status_code for r in responses} == {200}
    statuses = await fetch_rows(
        settings.database_url, "SELECT status, count(*) AS n FROM sessions GROUP BY status"
    )
    assert statuses == [{"status": "completed", "n": 40}]


async def test_retries_racing_their_originals_are_stored_once(settings: Settings) -> None:
    # Every event delivered twice at once, in shuffled order: the copies of an id share a batch or race
    # across consecutive ones; each id is stored once, one copy answered "processed", the other "duplicate".
    rooms = [room_name(new_agent_id()) for _ in range(30)]
    messages = list(itertools.chain.from_iterable(full_session(r) for r in rooms))
    doubled = messages * 2
    random.Random(7).shuffle(doubled)  # noqa: S311 - a reproducible order, not a secret
    async with running_app(settings) as app:
        responses = await asyncio.gather(*(app.webhook(m) for m in doubled))
        writer = app.services.webhook_writer
        assert (writer.stored, writer.duplicates) == (len(messages), len(messages))
    assert {r.status_code for r in responses} == {200}
    outcomes: dict[str, list[str]] = {}
    for message, response in zip(doubled, responses, strict=True):
        outcomes.setdefault(message.id, []).append(response.json()["status"])
    assert all(sorted(pair) == ["duplicate", "processed"] for pair in outcomes.values())
    statuses = await fetch_rows(
        settings.database_url, "SELECT status, count(*) AS n FROM sessions GROUP BY status"
    )
    assert statuses == [{"status": "completed", "n": 30}]


async def test_over_long_values_are_cut_to_their_column_and_fail_no_batch(settings: Settings) -> None:
    long_room = room_name(new_agent_id()) + "x" * 300  # webhook_events and sessions hold 256
    rooms = [room_name(new_agent_id()) for _ in range(4)]
    messages = [event("room_started", room, T0) for room in [*rooms, long_room]]
    async with running_app(settings) as app:
        responses = await asyncio.gather(*(app.webhook(m) for m in messages))
    assert [r.status_code for r in responses] == [200] * len(messages)
    stored = await fetch_rows(settings.database_url, "SELECT room_name FROM webhook_events")
    assert sorted(r["room_name"] for r in stored) == sorted([*rooms, long_room[:256]])
    # such a room is stored but not tracked: cut to fit, it could merge with another room's session
    tracked = await fetch_rows(settings.database_url, "SELECT room_name FROM sessions")
    assert sorted(r["room_name"] for r in tracked) == sorted(rooms)


async def test_a_nul_character_in_an_identity_does_not_fail_the_events_batched_with_it(
    settings: Settings,
) -> None:
    # PostgreSQL text cannot hold NUL: stored without it, and the batch's other events are stored too.
    rooms = [room_name(new_agent_id()) for _ in range(8)]
    messages = [event("room_started", room, T0) for room in rooms]
    odd = client(T0 + 1)
    odd.identity = "jane\x00doe@example.com"
    messages.append(event("participant_joined", rooms[0], T0 + 1, participant=odd))
    async with running_app(settings) as app:
        responses = await asyncio.gather(*(app.webhook(m) for m in messages))
    assert [r.status_code for r in responses] == [200] * len(messages)
    assert (await job(settings, rooms[0]))["participant_identity"] == "janedoe@example.com"
    stored = await fetch_rows(settings.database_url, "SELECT count(*) AS n FROM webhook_events")
    assert stored == [{"n": len(messages)}]


async def test_an_event_without_an_id_is_known_by_its_body_hash(settings: Settings) -> None:
    message = event("room_started", room_name(new_agent_id()), T0)
    message.id = ""  # a sender that sets none: the body's sha256 keeps retries idempotent
    body, auth = sign_webhook(message)
    async with running_app(settings) as app:
        statuses = [
            (await app.client.post("/livekit/webhook", content=body, headers={"Authorization": auth})).json()
            for _ in range(2)
        ]
    assert [s["status"] for s in statuses] == ["processed", "duplicate"]
    stored = await fetch_rows(settings.database_url, "SELECT id FROM webhook_events")
    assert stored == [{"id": "sha256:" + hashlib.sha256(body.encode()).hexdigest()}]
