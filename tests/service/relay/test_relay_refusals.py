"""Worker connections the relay refuses are refusals like the API's: each counted in
``lkps_refusals_total{route="/agent", reason}`` (a reason from a fixed set), and logged through the
rate-limited refusal log (a burst, then one a second, per reason), never with the token.

Raw protocol workers (tests/support/raw_worker.py) against lkps on a real uvicorn (speedups on and off) and
the LiveKit stand-in.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import time

import aiohttp
import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lkps.cli.revocation import revoke_agent
from lkps.observability.logs import JsonFormatter
from lkps.observability.refusals import BURST, PER_SECOND
from lkps.settings import Settings
from tests.support.raw_worker import RawWorker, livekit_agent_token, register_agent
from tests.support.service import (
    AGENT_KEY_ID,
    AGENT_SECRET,
    new_agent_id,
    served_app,
)

REFUSALS_LOGGER = "lkps.observability.refusals"
RELAY_LOGGER = "lkps.relay.socket"


def relay_refusals(exposition: str) -> dict[str, float]:
    """``lkps_refusals_total`` of route ``/agent``, by reason."""
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "lkps_refusals"
        for sample in family.samples
        if sample.name == "lkps_refusals_total" and sample.labels["route"] == "/agent"
    }


def agent_token(agent_id: str, *, issued: int, expires: int, issuer: str = AGENT_KEY_ID) -> str:
    claims = {
        "iss": issuer,
        "sub": f"agent-{agent_id}-{new_agent_id()}",
        "name": agent_id,
        "nbf": issued,
        "exp": expires,
        "video": {"agent": True},
    }
    return jwt.encode(claims, AGENT_SECRET, algorithm="HS256")


async def refused_upgrade(session: aiohttp.ClientSession, url: str, token: str | None, agent_id: str) -> int:
    if token is None:
        try:
            await session.ws_connect(f"{url}/agent")
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        raise AssertionError("the upgrade was accepted")
    try:
        await RawWorker.connect(session, url, token, agent_id)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    raise AssertionError("the upgrade was accepted")


async def test_each_kind_of_refused_worker_is_counted_by_reason_and_logged_without_its_token(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    agent_id, victim_id = new_agent_id(), new_agent_id()
    now = int(time.time())
    livekit_signed = livekit_agent_token(agent_id)
    tokens = {
        # LiveKit's key: the signature does not verify with the agent key
        "agent_token_signature": livekit_signed,
        "agent_token_wrong_key": agent_token(agent_id, issued=now, expires=now + 600, issuer="another-key"),
        "agent_token_expired": agent_token(agent_id, issued=now - 7200, expires=now - 3600),
        "agent_token_not_yet_valid": agent_token(agent_id, issued=now + 3600, expires=now + 7200),
        "agent_token_invalid": "not-a-token",
    }
    async with (
        served_app(settings) as served,
        httpx.AsyncClient(base_url=served.url) as client,
        aiohttp.ClientSession() as session,
    ):
        url = served.url.replace("http://", "ws://")
        for token in tokens.values():
            assert await refused_upgrade(session, url, token, agent_id) == 401
        assert await refused_upgrade(session, url, None, agent_id) == 401
        # a valid token announcing another agent's name: accepted, then closed
        grant = await register_agent(client, agent_id)
        rogue = await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], victim_id)
        assert (await rogue.closed())[0] == 1008
        # a token issued before its agent was revoked
        await served.services.audit.flush()
        await revoke_agent(settings, agent_id, dt.datetime.now(dt.timezone.utc))
        assert await refused_upgrade(session, url, grant["livekit_token"], agent_id) == 401
        exposition = (await client.get("/metrics")).text

    expected = {*tokens, "agent_token_missing", "agent_name_mismatch", "agent_revoked"}
    assert relay_refusals(exposition) == dict.fromkeys(expected, 1.0)
    lines = [r for r in caplog.records if r.name == REFUSALS_LOGGER and r.getMessage() == "request refused"]
    assert {r.reason for r in lines} == expected  # type: ignore[attr-defined]
    for line in lines:
        assert line.route == "/agent"  # type: ignore[attr-defined]
        assert line.levelno == logging.WARNING
        assert line.client_address == "127.0.0.1"  # type: ignore[attr-defined]
    mismatch = next(r for r in lines if r.reason == "agent_name_mismatch")  # type: ignore[attr-defined]
    assert f"this token's agent ({agent_id})" in mismatch.detail  # type: ignore[attr-defined]
    # one line per refusal, in the refusal log only: the relay writes none of its own
    assert not [r for r in caplog.records if r.name == RELAY_LOGGER and "refused" in r.getMessage()]
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for token in (*tokens.values(), grant["livekit_token"]):
        assert token not in formatted


async def test_a_burst_of_forged_worker_tokens_gives_a_bounded_log_and_every_one_is_counted(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    attempts = 3 * BURST
    forged = [f"forged.{secrets.token_urlsafe(24)}.{n}" for n in range(attempts)]
    started = time.monotonic()
    async with (
        served_app(settings) as served,
        httpx.AsyncClient(base_url=served.url) as client,
        aiohttp.ClientSession() as session,
    ):
        url = served.url.replace("http://", "ws://")
        for token in forged:
            assert await refused_upgrade(session, url, token, new_agent_id()) == 401
        elapsed = time.monotonic() - started
        exposition = (await client.get("/metrics")).text
    # the app has stopped: what was still suppressed has been reported

    assert relay_refusals(exposition) == {"agent_token_invalid": attempts}
    records = [r for r in caplog.records if r.name == REFUSALS_LOGGER]
    refused = [r for r in records if r.getMessage() == "request refused"]
    summaries = [r for r in records if r.getMessage().endswith("similar refusals suppressed")]
    assert len(refused) <= BURST + math.ceil(elapsed * PER_SECOND)
    suppressed = sum(r.suppressed for r in summaries)  # type: ignore[attr-defined]
    assert len(refused) + suppressed == attempts  # every refusal is a line or counted in one
    assert suppressed > 0
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert not [token for token in forged if token in formatted]
    # and no line of the server's per refused upgrade (uvicorn would log three, one of them at ERROR)
    others = [r for r in caplog.records if r.name not in (REFUSALS_LOGGER, "httpx")]
    assert [r.getMessage() for r in others if r.levelno >= logging.ERROR] == []
    per_connection = ("/agent", "rejected", "handshake")
    assert [r.getMessage() for r in others if any(word in r.getMessage() for word in per_connection)] == []
