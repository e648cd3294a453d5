"""Room names across replicas: each replica draws its names alone, so the random part must make a repeat
negligible (128 bits from ``secrets``; the arithmetic is in :mod:`lkps.domain.room_names`)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lkps.domain.room_names import RoomNames, agent_app_id_from_room
from lkps.speedups.caches import BufferedRoomNames

AGENT_ID = "0b9a3c1e-1111-2222-3333-444455556666"
T0 = 1_800_000_000
KINDS = pytest.mark.parametrize("kind", [RoomNames, BufferedRoomNames], ids=["plain", "caches"])


@KINDS
def test_two_replicas_starting_sessions_for_one_caller_in_one_second_never_share_a_room(
    kind: type[RoomNames],
) -> None:
    # Two replicas (two instances, no shared memory), the same caller, agent and second: 40,000 names each.
    # With 16 random bits (65,536 names) these collide by the thousand; with 128 bits, never in practice.
    first, second = kind(), kind()
    names = [r.new("JDOE1", AGENT_ID, T0) for r in (first, second) for _ in range(40_000)]
    assert len(set(names)) == len(names)


@KINDS
def test_the_random_part_is_128_bits_of_lower_case_hex(kind: type[RoomNames]) -> None:
    names = kind()
    issued = [names.new("JDOE1", AGENT_ID, T0) for _ in range(200)]
    parts = [re.fullmatch(rf"JDOE1-{AGENT_ID}-{T0}-([0-9a-f]{{32}})", name) for name in issued]
    assert all(parts)
    # Every bit varies: OR-ing the parts sets all 128, AND-ing them sets none (each fails with odds 2**-200).
    values = [int(match.group(1), 16) for match in parts if match]
    ored = anded = values[0]
    for value in values[1:]:
        ored, anded = ored | value, anded & value
    assert (ored, anded) == (2**128 - 1, 0)


@KINDS
@settings(max_examples=200, deadline=None)
@given(raw=st.text(min_size=1, max_size=100), agent=st.uuids(), second=st.integers(0, 2**34))
def test_any_caller_gets_a_safe_name_that_leads_back_to_the_agent(
    kind: type[RoomNames], raw: str, agent: object, second: int
) -> None:
    names = kind()
    cwid = names.cwid(raw)
    name = names.new(cwid, str(agent), second)
    assert re.fullmatch(r"[A-Za-z0-9._@]{0,64}-[0-9a-f-]{36}-\d+-[0-9a-f]{32}", name)
    assert agent_app_id_from_room(name) == str(agent)
