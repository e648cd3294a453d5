"""Only the canonical path routes: a target a path-routing gateway would not recognise as the API's (encoded,
absolute-form, dot segments, empty segments) never reaches a handler, on either dispatch path (issue 24,
item 3)."""

from __future__ import annotations

import json
import uuid

from lkps.settings import Settings
from tests.support.edge import OPEN_AGENT, gateway_headers, head, raw_request, served, status_of

REGISTER = "/api/agent/register"
DISGUISED = [
    "/api%2Fagent%2Fregister",
    "/%61pi/agent/register",
    "/api/agent/regist%65r",
    "/api/agent/register%00",
    "http://lkps/api/agent/register",
    "https://gateway.example.com/api/agent/register",
    "/api/./agent/register",
    "/api/x/../agent/register",
    "/api/agent/register/.",
    "//api/agent/register",
    "/api//agent/register",
    "/api\\agent/register",
]


async def test_only_the_canonical_target_reaches_a_handler(gateway_settings: Settings) -> None:
    body = json.dumps(OPEN_AGENT).encode()
    async with served(gateway_settings) as server:
        for target in DISGUISED:
            agent = str(uuid.uuid4())
            answer = await raw_request(server.port, head("POST", target, gateway_headers(agent), body))

            assert status_of(answer) in (400, 404), (target, answer[:200])
            assert b"livekit_token" not in answer, target

        canonical = await raw_request(
            server.port,
            head("POST", REGISTER, gateway_headers(str(uuid.uuid4())) | {"connection": "close"}, body),
        )

    assert status_of(canonical) == 200, canonical[:300]
    assert b"livekit_token" in canonical


async def test_a_refused_target_names_the_problem(gateway_settings: Settings) -> None:
    async with served(gateway_settings) as server:
        answer = await raw_request(
            server.port, head("POST", "/api%2Fagent%2Fregister", gateway_headers(), b"{}")
        )

    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert status_of(answer) == 400
    assert body["error"] == "bad_request"
    assert body["detail"].startswith("the request target is percent-encoded")


async def test_a_query_string_may_hold_encoded_characters(gateway_settings: Settings) -> None:
    async with served(gateway_settings) as server:
        answer = await raw_request(
            server.port, head("GET", "/api/health?probe=a%2Fb", {"connection": "close"})
        )

    assert status_of(answer) in (200, 503), answer[:300]
