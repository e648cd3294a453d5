"""A PostgreSQL outage: tokens keep flowing, audit rows wait and land, webhooks ask LiveKit to retry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest
from livekit import api

from livekit_platform_testing.tenant import REGISTER_ROLE, Tenant
from lkps.settings import Settings
from tests.support.postgres import PostgresCluster
from tests.support.service import (
    AGENT_KEY_ID,
    AGENT_SECRET,
    Parties,
    fetch_rows,
    new_agent_id,
    running_app,
    sign_webhook,
)
from tests.support.webhook_events import T0, event, room_name


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class Outage:
    """Stops and starts the session's PostgreSQL from a thread, so the app keeps running meanwhile."""

    def __init__(self, postgres: PostgresCluster) -> None:
        self._postgres = postgres
        self.down = False

    async def begin(self) -> None:
        await asyncio.to_thread(self._postgres.stop)
        self.down = True

    async def end(self) -> None:
        if self.down:
            await asyncio.to_thread(self._postgres.start)
            self.down = False


@pytest.fixture
async def outage(postgres: PostgresCluster) -> AsyncIterator[Outage]:
    """PostgreSQL is back up after the test, whatever happened in it."""
    control = Outage(postgres)
    yield control
    await control.end()


async def test_registrations_during_an_outage_are_all_audited_after_restart(
    settings: Settings, outage: Outage
) -> None:
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)
    agent_ids = [new_agent_id() for _ in range(5)]
    identities: list[str] = []
    async with running_app(settings) as app:
        for agent_id in agent_ids:
            response = await app.register(agent_id, enforce=False)
            identities.append(verifier.verify(response.json()["livekit_token"]).identity)
        await app.services.audit.flush()

        await outage.begin()
        started = time.monotonic()
        for i in range(60):
            response = await app.register(agent_ids[i % 5], enforce=False)
            assert response.status_code == 200
            identities.append(verifier.verify(response.json()["livekit_token"]).identity)
        # No request waited on the dead database.
        assert time.monotonic() - started < 5
        await wait_for(lambda: app.services.audit.failed_attempts >= 2)
        assert app.services.audit.pending > 0

        # The agents this process registered are still known, so sessions can start.
        session = await app.start_session(agent_ids[0])
        assert session.status_code == 200
        unknown = await app.start_session(new_agent_id())
        assert unknown.status_code == 503
        assert unknown.json()["error"] == "database_unavailable"

        await outage.end()
        await asyncio.wait_for(app.services.audit.flush(), 30)
        assert app.services.audit.dropped == 0

    rows = await fetch_rows(settings.database_url, "SELECT worker_identity FROM agent_registrations")
    assert sorted(r["worker_identity"] for r in rows) == sorted(identities)
    counts = await fetch_rows(settings.database_url, "SELECT sum(registration_count) AS n FROM agents")
    assert counts == [{"n": 65}]


async def test_a_revocation_during_an_outage_applies_at_once_and_is_written_after_restart(
    tenant: Tenant, parties: Parties, entra_settings: Settings, outage: Outage
) -> None:
    agent = tenant.add_agent("agent revoked during an outage")
    body = {"agent_entra_app_id": agent.app_id}
    client = await tenant.bearer(parties.client)
    async with running_app(entra_settings) as app:
        registered = await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(agent))
        assert registered.status_code == 200
        await app.services.audit.flush()

        await outage.begin()
        tenant.revoke(agent, REGISTER_ROLE)
        refused = await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(agent))
        assert refused.status_code == 403
        await wait_for(lambda: app.services.audit.failed_attempts >= 1)
        session = await app.client.post("/api/session/start", json=body, headers=client)
        assert session.status_code == 404
        assert "was revoked at" in session.json()["detail"]

        await outage.end()
        await asyncio.wait_for(app.services.audit.flush(), 30)

    rows = await fetch_rows(
        entra_settings.database_url,
        "SELECT revoked FROM agent_registrations WHERE entra_app_id = :a",
        a=agent.app_id,
    )
    assert rows == [{"revoked": True}]
    agents = await fetch_rows(
        entra_settings.database_url,
        "SELECT revoked_at FROM agents WHERE entra_app_id = :a",
        a=agent.app_id,
    )
    assert agents[0]["revoked_at"] is not None


async def test_webhooks_during_an_outage_get_503_and_succeed_when_retried(
    settings: Settings, outage: Outage
) -> None:
    fast = settings.model_copy(update={"webhook_write_timeout": 3.0})
    message = event("room_started", room_name(new_agent_id()), T0)
    body, auth = sign_webhook(message)
    async with running_app(fast) as app:
        await outage.begin()
        failed = await app.client.post("/livekit/webhook", content=body, headers={"Authorization": auth})
        assert failed.status_code == 503
        assert failed.json()["error"] == "database_unavailable"
        await outage.end()
        retried = await app.client.post("/livekit/webhook", content=body, headers={"Authorization": auth})
    assert retried.status_code == 200
    assert retried.json()["status"] == "processed"
    rows = await fetch_rows(settings.database_url, "SELECT status FROM sessions")
    assert rows == [{"status": "room_created"}]


async def test_a_database_restart_between_webhooks_costs_no_retry(settings: Settings, outage: Outage) -> None:
    # The writer keeps its connection between batches; the one it held across the restart is dead.
    rooms = [room_name(new_agent_id()) for _ in range(2)]
    async with running_app(settings) as app:
        before = await app.webhook(event("room_started", rooms[0], T0))
        await outage.begin()
        await outage.end()
        after = await app.webhook(event("room_started", rooms[1], T0))
    assert [before.status_code, after.status_code] == [200, 200]
    assert after.json()["status"] == "processed"
    rows = await fetch_rows(settings.database_url, "SELECT count(*) AS n FROM sessions")
    assert rows == [{"n": 2}]


async def test_health_reports_the_database_while_it_is_down(settings: Settings, outage: Outage) -> None:
    uncached = settings.model_copy(update={"health_cache_ttl": 0})
    async with running_app(uncached) as app:
        assert (await app.client.get("/api/health")).status_code == 200
        await outage.begin()
        down = await app.client.get("/api/health")
        await outage.end()
    assert down.status_code == 503
    assert down.json()["status"] == "unhealthy"
    assert down.json()["reason"] == "database"


async def test_rows_still_queued_at_shutdown_are_flushed(settings: Settings, outage: Outage) -> None:
    async with running_app(settings) as app:
        await outage.begin()
        for _ in range(20):
            await app.register(new_agent_id())
        await wait_for(lambda: app.services.audit.failed_attempts >= 3)
        await outage.end()
        # The writer is backing off, so the rows are still queued when shutdown begins.
        assert app.services.audit.pending == 20
    rows = await fetch_rows(settings.database_url, "SELECT count(*) AS n FROM agent_registrations")
    assert rows == [{"n": 20}]


async def test_only_records_past_the_queue_bound_are_dropped_counted_and_logged(
    settings: Settings,
    outage: Outage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bounded = settings.model_copy(update={"audit_queue_size": 10, "audit_flush_timeout": 30})
    async with running_app(bounded) as app:
        await outage.begin()
        # The writer holds one batch in hand while retrying; the queue holds up to 10 more.
        await app.register(new_agent_id())
        await wait_for(lambda: app.services.audit.failed_attempts >= 1)
        with caplog.at_level(logging.ERROR, logger="lkps.storage.audit_writer"):
            for _ in range(15):
                assert (await app.register(new_agent_id())).status_code == 200
        assert app.services.audit.dropped == 5
        assert any(r.getMessage() == "audit queue full: record dropped" for r in caplog.records)
        await outage.end()
    rows = await fetch_rows(settings.database_url, "SELECT count(*) AS n FROM agent_registrations")
    assert rows == [{"n": 11}]
