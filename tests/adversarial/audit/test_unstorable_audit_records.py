"""An audit record that can never be stored (a lone surrogate from a token's claim) is set aside, counted and
logged without its values, and never blocks the records behind it; an audit writer that stops making progress
for any other reason turns ``GET /api/health`` to 503 with reason ``audit``. On PostgreSQL (speedups on and
off: SQLAlchemy's statements and speedup ``bulk``'s) and on SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from livekit_platform_testing.tenant import REGISTER_ROLE, SESSION_ROLE, Tenant
from lkps.domain.audit import Registration
from lkps.domain.sessions import SessionFacts
from lkps.settings import Settings, normalize_database_url
from lkps.storage import migrate
from tests.support.service import Parties, fetch_rows, new_agent_id, running_app

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
LONE = "\ud800"  # a lone surrogate: a valid str (PyJWT's json.loads makes one from "\ud800"), not UTF-8


@pytest.fixture(params=["postgresql", "sqlite"])
def any_settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "postgresql":
        return settings
    url = normalize_database_url(f"sqlite:///{tmp_path / 'lkps.db'}")
    migrate.upgrade(url)
    return settings.model_copy(update={"database_url": url})


def poisoned(agent_id: str) -> list[Registration | SessionFacts]:
    now = dt.datetime.now(dt.timezone.utc)
    return [
        Registration(
            id=str(uuid.uuid4()),
            entra_app_id=agent_id,
            worker_identity=f"agent-{agent_id}-x",
            requested_by="7e1d2c3b-4a59-4867-9a8b-c7d6e5f4a3b2",
            client_id=agent_id,
            requester_email=f"jane{LONE}@example.com",
            identity_mode="entra",
            enforce_client_authz=False,
            issued_at=now.replace(microsecond=0),
            expires_at=now.replace(microsecond=0) + dt.timedelta(hours=1),
            registered_at=now,
        ),
        SessionFacts(
            room_name=f"JDOE1-{agent_id}-1-{'0' * 32}", participant_identity=f"x{LONE}y", requested_at=now
        ),
    ]


async def test_a_record_that_cannot_be_stored_is_set_aside_and_blocks_nothing(
    any_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    poisoned_agent, agents = new_agent_id(), [new_agent_id() for _ in range(3)]
    async with running_app(any_settings) as app:
        for record in poisoned(poisoned_agent):
            app.services.audit.submit(record)
        for agent_id in agents:
            assert (await app.register(agent_id, enforce=False)).status_code == 200
        await asyncio.wait_for(app.services.audit.flush(), 30)
        assert app.services.audit.set_aside == 2
        assert not app.services.audit.stuck
        health = await app.client.get("/api/health")
        assert health.status_code == 200, health.text
    rows = await fetch_rows(any_settings.database_url, "SELECT entra_app_id FROM agent_registrations")
    assert sorted(row["entra_app_id"] for row in rows) == sorted(agents)
    lines = [r for r in caplog.records if r.getMessage() == "audit record cannot be stored: set aside"]
    assert {(r.record, tuple(r.fields)) for r in lines} == {  # type: ignore[attr-defined]
        ("Registration", ("requester_email",)),
        ("SessionFacts", ("participant_identity",)),
    }
    assert all(r.levelno == logging.ERROR for r in lines)
    assert not any("jane" in str(vars(r)) for r in lines)


async def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_an_audit_writer_that_makes_no_progress_turns_health_to_503_audit(settings: Settings) -> None:
    settings = settings.model_copy(update={"audit_stuck_after": 0.5, "health_cache_ttl": 0.0})
    agent_id = new_agent_id()
    locker = create_async_engine(settings.database_url)
    try:
        async with running_app(settings) as app:

            async def health_is(status: int, reason: str | None) -> bool:
                response = await app.client.get("/api/health")
                return response.status_code == status and response.json().get("reason") == reason

            assert await health_is(200, None)
            async with locker.connect() as conn:
                transaction = await conn.begin()
                # A lock the writer waits on without an error: its batch stays unwritten.
                await conn.execute(text("LOCK TABLE agent_registrations IN ACCESS EXCLUSIVE MODE"))
                assert (await app.register(agent_id, enforce=False)).status_code == 200
                await wait_for(lambda: health_is(503, "audit"))
                await transaction.rollback()
            await wait_for(lambda: health_is(200, None))
            await asyncio.wait_for(app.services.audit.flush(), 30)
    finally:
        await locker.dispose()
    rows = await fetch_rows(
        settings.database_url, "SELECT 1 FROM agent_registrations WHERE entra_app_id = :a", a=agent_id
    )
    assert len(rows) == 1


async def test_a_lone_surrogate_in_a_users_claims_answers_as_usual_and_blocks_no_audit_row(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    # Entra tokens are JSON: "\ud800" in a claim decodes (PyJWT, json.loads) to a lone surrogate.
    developer = str(uuid.uuid4())
    odd = {"preferred_username": f"dev{LONE}@example.com", "name": f"Dev {LONE}"}
    register = tenant.entra.user_token(
        AZURE_CLI, tenant.platform.app_id, user_oid=developer, roles=[REGISTER_ROLE], **odd
    )
    session = tenant.entra.user_token(
        parties.client.app_id, tenant.platform.app_id, user_oid=str(uuid.uuid4()), roles=[SESSION_ROLE], **odd
    )
    async with running_app(entra_settings) as app:
        registered = await app.client.post(
            "/api/agent/register",
            json={"service_config": {"enforce_client_authz": False}},
            headers={"Authorization": f"Bearer {register}"},
        )
        assert registered.status_code == 200, registered.text
        agent_name = registered.json()["agent_name"]
        started = await app.client.post(
            "/api/session/start",
            json={"agent_entra_app_id": agent_name},
            headers={"Authorization": f"Bearer {session}"},
        )
        assert started.status_code == 200, started.text
        await asyncio.wait_for(app.services.audit.flush(), 30)
        assert not app.services.audit.stuck
        assert app.services.audit.set_aside == 0  # the claims were made storable where they came in
    sessions = await fetch_rows(entra_settings.database_url, "SELECT participant_identity FROM sessions")
    assert [row["participant_identity"] for row in sessions] == ["dev\ufffd@example.com"]
    registrations = await fetch_rows(
        entra_settings.database_url,
        "SELECT requester_email FROM agent_registrations WHERE requested_by = :u",
        u=developer,
    )
    assert [row["requester_email"] for row in registrations] == ["dev\ufffd@example.com"]
