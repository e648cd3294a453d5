"""Room names keep their form and are never issued twice, however many sessions one caller starts in one
second (the randomness across replicas: tests/adversarial/room_names/)."""

from __future__ import annotations

import re

import pytest

from lkps.domain.room_names import RoomNames
from lkps.settings import Settings
from lkps.speedups.caches import BufferedRoomNames
from tests.support.service import fetch_rows, new_agent_id, running_app

AGENT_ID = "0b9a3c1e-1111-2222-3333-444455556666"
T0 = 1_800_000_000
# The plain class, and the one of speedup caches (random bytes fetched in bulk, CWIDs kept once made safe).
KINDS = pytest.mark.parametrize("kind", [RoomNames, BufferedRoomNames])


@KINDS
def test_twenty_thousand_names_in_one_second_are_distinct_and_in_the_specs_form(
    kind: type[RoomNames],
) -> None:
    names = kind()
    issued = [names.new("JDOE1", AGENT_ID, T0) for _ in range(20_000)]
    assert len(set(issued)) == len(issued)
    assert all(re.fullmatch(rf"JDOE1-{AGENT_ID}-{T0}-[0-9a-f]{{32}}", name) for name in issued)


@KINDS
def test_a_new_second_starts_afresh_and_other_callers_do_not_interfere(kind: type[RoomNames]) -> None:
    names = kind()
    first = names.new("JDOE1", AGENT_ID, T0)
    assert names.new("JDOE1", AGENT_ID, T0 + 1).startswith(f"JDOE1-{AGENT_ID}-{T0 + 1}-")
    assert names.new("ASMITH", AGENT_ID, T0 + 1).startswith("ASMITH-")
    assert first.startswith(f"JDOE1-{AGENT_ID}-{T0}-")


@KINDS
@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("JDOE1", "JDOE1"),
        ("a/b c", "a_b_c"),
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("é" * 70, "_" * 64),
    ],
)
def test_a_cwid_keeps_only_room_name_safe_characters_and_64_of_them(
    kind: type[RoomNames], raw: str, safe: str
) -> None:
    names = kind()
    assert names.cwid(raw) == safe
    assert names.cwid(raw) == safe  # asked again


async def test_sessions_started_in_the_same_second_get_their_own_rooms_and_rows(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings, clock=lambda: float(T0)) as app:
        await app.register(agent_id, enforce=False)
        rooms = [(await app.start_session(agent_id)).json()["room_name"] for _ in range(600)]
        await app.services.audit.flush()
    assert len(set(rooms)) == 600
    query = "SELECT count(*) AS n FROM sessions WHERE agent_entra_app_id = :a"
    rows = await fetch_rows(settings.database_url, query, a=agent_id)
    assert rows[0]["n"] == 600
