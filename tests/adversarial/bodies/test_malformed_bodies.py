"""Malformed bodies: every one is a 400 naming the field (never a 500, never a value silently changed), on
the plain path and with speedups on; one rule for agent IDs (a GUID in 8-4-4-4-12 form)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from livekit import api
from starlette.requests import Request

from lkps.api.body import json_object
from lkps.api.sessions import _metadata
from lkps.domain.ids import Ids
from lkps.errors import ApiError
from lkps.settings import Settings
from lkps.speedups.caches import FastIds
from tests.support.service import (
    API_KEY,
    API_SECRET,
    client_headers,
    gateway_headers,
    new_agent_id,
    running_app,
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


async def start(settings: Settings, raw: bytes) -> tuple[int, dict[str, Any]]:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        body = raw.replace(b"AGENT", agent_id.encode())
        response = await app.client.post("/api/session/start", content=body, headers=client_headers())
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        pytest.param(b'{"deep": ' + json.dumps(nested(300)).encode() + b"}", "metadata.deep", id="300-deep"),
        pytest.param(b'{"deep": ' + json.dumps(nested(40)).encode() + b"}", "metadata.deep", id="40-deep"),
        pytest.param(b'{"n": 123456789012345678901234567890}', "metadata.n", id="huge-int"),
        pytest.param(b'{"n": [1, -9223372036854775809]}', "metadata.n[1]", id="below-int64"),
        pytest.param(b'{"n": 18446744073709551616}', "metadata.n", id="above-uint64"),
        pytest.param(b'{"n": 1e400}', "body", id="infinite-float"),
    ],
)
async def test_a_malformed_metadata_value_is_a_400_naming_its_path(
    settings: Settings, metadata: bytes, field: str
) -> None:
    raw = b'{"agent_entra_app_id": "AGENT", "metadata": ' + metadata + b"}"
    status, body = await start(settings, raw)
    assert status == 400, body
    assert body["error"] == "bad_request"
    assert body["field"].startswith(field)


async def test_a_body_nested_past_the_parsers_limit_is_a_400_naming_the_body(settings: Settings) -> None:
    status, body = await start(settings, b"[" * 5000 + b"]" * 5000)
    assert (status, body["field"]) == (400, "body")


async def test_the_largest_integers_in_range_reach_the_agent_unchanged(settings: Settings) -> None:
    metadata = b'{"max": 18446744073709551615, "min": -9223372036854775808}'
    raw = b'{"agent_entra_app_id": "AGENT", "metadata": ' + metadata + b"}"
    status, body = await start(settings, raw)
    assert status == 200, body
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(body["participant_token"])
    assert claims.room_config is not None
    forwarded = json.loads(claims.room_config.agents[0].metadata)
    assert (forwarded["max"], forwarded["min"]) == (2**64 - 1, -(2**63))


AGENT = "0f6a3c1e-7d7b-4a8e-9a59-1c2d3e4f5a6b"
NOT_STANDARD = [
    f"urn:uuid:{AGENT}",
    AGENT.replace("-", ""),
    "{" + AGENT + "}",
    f" {AGENT}",
    f"{AGENT}\n",
    "0f6a3c1e7d7b-4a8e-9a59-1c2d-3e4f5a6b",  # the hyphens moved
    AGENT.replace("0", "\uff10"),  # full-width digits
]


@pytest.mark.parametrize("value", NOT_STANDARD)
async def test_an_agent_id_not_in_standard_form_is_a_400_in_the_body(settings: Settings, value: str) -> None:
    raw = json.dumps({"agent_entra_app_id": value}).encode()
    status, body = await start(settings, raw)
    assert (status, body["field"]) == (400, "agent_entra_app_id")
    assert "8-4-4-4-12" in body["detail"]


@pytest.mark.parametrize("value", [v for v in NOT_STANDARD if v.isascii() and "\n" not in v])
async def test_an_agent_id_not_in_standard_form_is_a_400_in_the_gateway_header(
    settings: Settings, value: str
) -> None:
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register", json={}, headers=gateway_headers(client_id=value)
        )
    assert response.status_code == 400
    assert response.json()["field"] == settings.gateway_client_id_header


async def test_an_upper_case_agent_id_names_the_same_agent(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        registered = await app.register(agent_id.upper(), enforce=False)
        started = await app.start_session(agent_id.upper())
    assert (registered.status_code, started.status_code) == (200, 200)
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(started.json()["participant_token"])
    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == agent_id


@pytest.mark.parametrize("ids", [Ids(), FastIds()], ids=["plain", "caches"])
@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.one_of(st.uuids().map(str), st.text(max_size=45)))
def test_an_agent_id_is_accepted_exactly_in_standard_form(ids: Ids, value: str) -> None:
    try:
        canonical = ids.canonical(value)
    except ValueError:
        assert not (
            len(value) == 36 and value.isascii() and value.count("-") == 4 and value == str(_uuid(value))
        )
    else:
        assert canonical == value.lower() == str(_uuid(value))


def _uuid(value: str) -> object:
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# Any JSON document as a body: session start's body readers either take it or answer a 400 naming a field.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=40,
)


def _request(raw: bytes) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


@hypothesis_settings(max_examples=300, deadline=None)
@given(metadata=_JSON, wrap=st.integers(0, 300))
def test_any_json_metadata_is_taken_or_refused_with_a_400_naming_a_field(metadata: Any, wrap: int) -> None:
    for _ in range(wrap % 7 * 50):
        metadata = {"a": metadata}
    raw = json.dumps({"agent_entra_app_id": AGENT, "metadata": metadata}).encode()
    refusal: ApiError | None = None
    try:
        _metadata(asyncio.run(json_object(_request(raw), allow_empty=False)))
    except ApiError as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.status == 400
        assert refusal.field
