"""The whole system with the service validating Entra tokens itself: flow, faults and security, end to end.

One system and one agent process for the module (an agent process takes ~15 s to start); tests run in file
order and the last ones revoke the agent, so each test leaves the system usable for the next.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from livekit import api

from demo.system import System
from livekit_platform_testing.livekit import WebhookDelivery
from livekit_platform_testing.tenant import REGISTER_ROLE, SESSION_ROLE
from tests.support.deployment import (
    FINAL,
    Deployment,
    assert_no_secret_in_logs_or_spans,
    deploy,
    eventually,
    http_status,
    start_system,
)
from tests.support.postgres import PostgresCluster


@pytest.fixture(scope="module")
def system(postgres: PostgresCluster, e2e_workdir: Path) -> Iterator[System]:
    yield from start_system(
        e2e_workdir,
        postgres.create_database("e2e_entra"),
        identity_mode="entra",
        # shorter than azure-identity's 5 min refresh margin: every renewal asks Entra, so revoking a role
        # takes effect at the agent's next renewal
        entra_token_lifetime=120,
        # Graph answers are not cached: tenant changes made by a test apply to its next call
        service_env={
            "LKPS_WEBHOOK_WRITE_TIMEOUT": "3",
            "LKPS_GRAPH_CACHE_TTL": "0",
            "LKPS_GRAPH_NEGATIVE_CACHE_TTL": "0",
        },
    )


@pytest.fixture(scope="module")
def deployment(system: System) -> Deployment:
    return deploy(system, "entra")


def _utc(value: dt.datetime) -> float:
    return value.replace(tzinfo=value.tzinfo or dt.timezone.utc).timestamp()


def test_a_client_session_dispatches_the_agent_with_its_metadata_and_the_lifecycle_is_recorded(
    deployment: Deployment,
) -> None:
    system, entra = deployment.system, deployment.system.entra
    registration = deployment.registrations()[0]
    assert registration["identity_mode"] == "entra"
    assert registration["client_id"] == deployment.agent_id
    assert _utc(registration["expires_at"]) - _utc(registration["issued_at"]) == 60
    worker = deployment.worker()
    assert worker.claims.identity == registration["worker_identity"]

    room, participant, job_id = deployment.session({"ticket": "E2E-1", "participant_identity": "forged"})
    job = system.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
    assert job.worker_id == worker.id
    record = deployment.job_record(job_id)
    assert record["api"].startswith("RuntimeError: JobContext.api is blocked by livekit-platform-sdk")
    assert record["pid"] != deployment.agent.pid
    client_principal = entra.app(deployment.client.app_id).service_principal_id
    assert record["metadata"]["ticket"] == "E2E-1"
    # the service's identity fields win over what the caller sent
    assert record["metadata"]["participant_identity"] == client_principal == participant

    system.livekit.leave(room, participant)
    row = deployment.ended(room)
    assert row["status"] == "completed"
    assert row["agent_entra_app_id"] == deployment.agent_id
    assert row["client_id"] == deployment.client.app_id
    assert row["agent_identity"] == job.participant_identity
    for stamp in ("requested_at", "room_created_at", "participant_joined_at", "agent_joined_at"):
        assert row[stamp] is not None, stamp
    events = {
        e["event"] for e in system.rows("SELECT event FROM webhook_events WHERE room_name = :r", r=room)
    }
    assert {"room_started", "participant_joined", "participant_left"} <= events


def test_the_worker_keeps_its_job_while_the_platform_is_down_across_a_renewal_then_renews(
    deployment: Deployment,
) -> None:
    system = deployment.system
    worker = deployment.worker()
    room, participant, job_id = deployment.session({"hold": True})
    system.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
    before = len(deployment.registrations())
    logged = len(deployment.agent.output)
    # The worker's connection goes through the service's relay, so it drops with the (only) replica; the job
    # runs on in its room, as livekit-server keeps a job whose worker went away (pkg/agent/worker.go Close).
    grace, system.livekit.job_migration_grace = system.livekit.job_migration_grace, 300.0
    system.service.stop()
    try:
        # the renewal falls due while the service is down: the SDK retries (and says so) on its current token
        eventually(
            lambda: deployment.agent.output[logged:].count("platform registration attempt failed") >= 2,
            timeout=45,
            what="renewal attempts failing while the platform is down",
        )
        assert deployment.agent.running
        assert system.livekit.job(job_id).status == "JS_RUNNING"
    finally:
        system.service.start()

    eventually(lambda: len(deployment.registrations()) > before, timeout=30, what="a renewal once it is back")
    # back through the relay: a new worker registration, which reports the running job and takes it over
    reconnected = deployment.worker(not_in=(worker.id,))
    eventually(
        lambda: system.livekit.job(job_id).worker_id == reconnected.id, timeout=30, what="the job migrated"
    )
    system.livekit.job_migration_grace = grace
    assert deployment.agent.running
    assert system.livekit.job(job_id).status == "JS_RUNNING"
    assert http_status(f"http://127.0.0.1:{deployment.readiness_port}/ready") == 200
    system.livekit.leave(room, participant)


def test_after_a_livekit_restart_the_worker_reconnects_with_its_newest_unexpired_token(
    deployment: Deployment,
) -> None:
    system = deployment.system
    old = deployment.worker()
    restarted_at = time.time()
    system.livekit.restart()
    reconnected = deployment.worker(not_in=(old.id,))

    newest = deployment.registrations()[-1]
    assert _utc(newest["issued_at"]) <= reconnected.connection.at.timestamp()
    assert reconnected.claims.identity == newest["worker_identity"]
    assert len(deployment.registrations()) >= 2  # a renewed token, not the first one
    attempts = [c for c in system.livekit.connections if c.at.timestamp() >= restarted_at]
    assert attempts
    for attempt in attempts:
        assert attempt.accepted, attempt.reason
        assert attempt.claims is not None
        assert attempt.claims.expires_at > attempt.at.timestamp()


def test_tokens_keep_flowing_while_the_database_is_down_and_every_audit_and_lifecycle_row_lands_after(
    deployment: Deployment, postgres: PostgresCluster
) -> None:
    system = deployment.system
    sdk_less = system.tenant.add_agent("agent without the SDK")
    postgres.stop()
    try:
        issued = []
        for _ in range(3):
            response = system.register(sdk_less)
            assert response.status_code == 200, response.text
            claims = jwt.decode(response.json()["livekit_token"], options={"verify_signature": False})
            issued.append(claims["sub"])
        room, participant, job_id = deployment.session({"during": "database outage"})
        system.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
        assert http_status(f"{system.service.url}/api/health") == 503
    finally:
        postgres.start()

    audited = eventually(
        lambda: (
            {
                r["worker_identity"]
                for r in system.rows(
                    "SELECT worker_identity FROM agent_registrations WHERE entra_app_id = :a",
                    a=sdk_less.app_id,
                )
            }
            >= set(issued)
        ),
        timeout=60,
        what="the outage's registrations audited",
    )
    assert audited
    # Both sources land, each retried on its own: session start's facts (audit writer) and the webhooks.
    row = eventually(
        lambda: (
            (r := deployment.lifecycle(room))
            and r["agent_joined_at"] is not None
            and r["requested_at"] is not None
            and r
        ),
        timeout=60,
        what="the outage's session lifecycle written from the audit queue and retried webhooks",
    )
    assert row["client_id"] == deployment.client.app_id
    assert row["participant_joined_at"] is not None
    assert row["status"] in ("active", *FINAL)
    system.livekit.leave(room, participant)


def _deliveries(system: System, room: str) -> list[WebhookDelivery]:
    return [d for d in system.livekit.webhook_deliveries if d.room_name == room and d.status == "delivered"]


def _settled(system: System, room: str) -> bool:
    mine = [d for d in system.livekit.webhook_deliveries if d.room_name == room]
    left = [d for d in mine if d.event == "participant_left" and d.status == "delivered"]
    return len(left) >= 2 and all(d.status != "pending" for d in mine)


def _post_webhook(system: System, body: str, authorization: str) -> tuple[int, dict[str, object]]:
    response = httpx.post(
        f"{system.service.url}/livekit/webhook",
        content=body.encode(),
        headers={"Authorization": authorization, "Content-Type": "application/webhook+json"},
        timeout=30,
    )
    return response.status_code, response.json()


def _signed(system: System, body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(system.livekit.api_key, system.livekit.api_secret).with_sha256(digest).to_jwt()


def test_webhooks_replayed_duplicated_reordered_or_tampered_change_no_lifecycle_row(
    deployment: Deployment,
) -> None:
    system = deployment.system
    room, participant, _ = deployment.session({"ticket": "webhooks"})
    system.livekit.leave(room, participant)
    deployment.ended(room)
    # Settled: the client and the agent have both left, and nothing for this room is still being delivered
    # (the agent's own participant_left can arrive after the row already reads as ended).
    delivered = eventually(
        lambda: _settled(system, room) and _deliveries(system, room),
        timeout=30,
        what="the room's webhooks delivered",
    )
    row = deployment.lifecycle(room)
    stored = system.rows("SELECT id FROM webhook_events WHERE room_name = :r ORDER BY id", r=room)

    # LiveKit's own deliveries, replayed twice and in reverse order: each is a known event ID
    for delivery in [*delivered, *reversed(delivered)]:
        status, answer = _post_webhook(system, delivery.body, _signed(system, delivery.body))
        assert (status, answer["status"]) == (200, "duplicate"), answer
    # tampered: a body changed after signing, and a body signed with another secret
    original = delivered[0]
    forged = original.body.replace(participant, "mallory@example.com").replace(original.id, "EV_forged")
    assert _post_webhook(system, forged, _signed(system, original.body))[0] == 401
    foreign = api.AccessToken(system.livekit.api_key, "another-secret-" + "x" * 40).to_jwt()
    assert _post_webhook(system, forged, foreign)[0] == 401

    assert deployment.lifecycle(room) == row
    assert system.rows("SELECT id FROM webhook_events WHERE room_name = :r ORDER BY id", r=room) == stored


def test_identity_headers_a_caller_sends_are_ignored_in_entra_mode(deployment: Deployment) -> None:
    system, tenant = deployment.system, deployment.system.tenant
    spoofed = {
        "client-id": deployment.client.app_id,
        "user-id": "victim-object-id",
        "x-user-email": "ceo@example.com",
        "user-profile": '{"cwid": "CEO1", "email": "ceo@example.com", "displayName": "The CEO"}',
    }
    # headers alone are no identity
    body = {"agent_entra_app_id": deployment.agent_id}
    assert system.call("/api/session/start", None, body, headers=spoofed).status_code == 401
    assert system.call("/api/agent/register", None, {}, headers=spoofed).status_code == 401

    # a client that is not pre-authorized stays refused even when it claims to be one that is
    stranger = tenant.add_client("stranger client")
    refused = system.start_session(stranger, deployment.agent_id, headers=spoofed)
    assert refused.status_code == 403, refused.text

    # an authorized client's session carries its token's identity, not the headers'
    response = system.start_session(deployment.client, deployment.agent_id, headers=spoofed)
    assert response.status_code == 200, response.text
    principal = system.entra.app(deployment.client.app_id).service_principal_id
    room = response.json()["room_name"]
    assert room.startswith(principal.replace("-", "_") + "-")
    row = eventually(lambda: deployment.lifecycle(room), timeout=30, what="the session row")
    assert (row["participant_identity"], row["client_id"]) == (principal, deployment.client.app_id)


def test_a_client_whose_session_role_is_removed_is_refused(deployment: Deployment) -> None:
    system = deployment.system
    client = system.tenant.add_client("client losing its role", authorized_for=[deployment.agent_id])
    assert system.start_session(client, deployment.agent_id).status_code == 200
    system.tenant.revoke(client, SESSION_ROLE)
    refused = system.start_session(client, deployment.agent_id)
    assert refused.status_code == 403
    assert SESSION_ROLE in refused.json()["detail"]


def test_an_agent_whose_role_is_removed_is_refused_renewal_drains_and_exits_non_zero(
    deployment: Deployment,
) -> None:
    system = deployment.system
    system.tenant.revoke(deployment.agent_id, REGISTER_ROLE)
    code = deployment.agent.wait(timeout=120)
    assert code != 0
    output = deployment.agent.output
    assert "the platform refused to renew the LiveKit token" in output
    assert "HTTP 403" in output
    assert not any(w.connected and w.agent_name == deployment.agent_id for w in system.livekit.workers)
    refused = [s for s in system.otlp.spans if s.name == "platform.renew" and s.status_code == "ERROR"]
    assert any(s.attributes.get("http.response.status_code") == 403 for s in refused)

    # The refused renewal revoked the agent's registration in the service, so a new session is refused at
    # once instead of being accepted with a dispatch that no worker of the revoked agent could ever take.
    response = system.start_session(deployment.client, deployment.agent_id)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "agent_not_registered"
    assert f"agent {deployment.agent_id}'s registration was revoked at " in response.json()["detail"]


def test_no_token_or_secret_appears_in_any_log_or_span(deployment: Deployment) -> None:
    assert "platform.renew" in {s.name for s in deployment.system.otlp.spans}
    assert_no_secret_in_logs_or_spans(deployment.system)
