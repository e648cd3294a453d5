"""The whole system with a header-injecting gateway in front of the service (``LKPS_IDENTITY_MODE=gateway``),
and the service's OpenAPI document fuzzed against the running service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from demo.system import System
from tests.support.deployment import (
    Deployment,
    assert_no_secret_in_logs_or_spans,
    deploy,
    start_system,
)
from tests.support.postgres import PostgresCluster


@pytest.fixture(scope="module")
def system(postgres: PostgresCluster, e2e_workdir: Path) -> Iterator[System]:
    yield from start_system(e2e_workdir, postgres.create_database("e2e_gateway"), identity_mode="gateway")


@pytest.fixture(scope="module")
def deployment(system: System) -> Deployment:
    return deploy(system, "gateway")


def test_an_agent_and_a_client_behind_the_gateway_run_a_session_end_to_end(deployment: Deployment) -> None:
    system = deployment.system
    assert system.gateway is not None
    assert deployment.agent.env["LIVEKIT_PLATFORM_URL"] == system.gateway.url
    registration = deployment.registrations()[0]
    assert registration["identity_mode"] == "gateway"
    assert registration["client_id"] == deployment.agent_id
    assert deployment.worker().claims.identity == registration["worker_identity"]

    room, participant, job_id = deployment.session({"ticket": "GW-1"})
    system.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
    record = deployment.job_record(job_id)
    assert record["api"].startswith("RuntimeError: JobContext.api is blocked")
    principal = system.entra.app(deployment.client.app_id).service_principal_id
    assert record["metadata"] == {
        "ticket": "GW-1",
        "participant_name": principal.replace("-", "_"),
        "participant_identity": principal,
        "participant_cwid": principal.replace("-", "_"),
    }
    system.livekit.leave(room, participant)
    row = deployment.ended(room)
    assert (row["status"], row["client_id"]) == ("completed", deployment.client.app_id)
    assert row["agent_joined_at"] is not None


def test_the_gateway_replaces_identity_headers_a_caller_sends_with_its_validated_token(
    deployment: Deployment,
) -> None:
    system = deployment.system
    stranger = system.tenant.add_client("stranger behind the gateway")
    spoofed = {"client-id": deployment.client.app_id, "user-id": "victim", "x-bayer-user": "ceo@example.com"}
    refused = system.start_session(stranger, deployment.agent_id, headers=spoofed)
    assert refused.status_code == 403, refused.text

    response = system.start_session(deployment.client, deployment.agent_id, headers=spoofed)
    assert response.status_code == 200, response.text
    principal = system.entra.app(deployment.client.app_id).service_principal_id
    assert response.json()["room_name"].startswith(principal.replace("-", "_") + "-")


def test_the_gateway_refuses_a_missing_token_and_a_token_without_the_route_role(
    deployment: Deployment,
) -> None:
    system = deployment.system
    body = {"agent_entra_app_id": deployment.agent_id}
    headers = {"client-id": deployment.client.app_id, "user-id": "someone"}
    assert system.call("/api/session/start", None, body, headers=headers).status_code == 401
    # a client app holds the session role, not the register role
    refused = system.call("/api/agent/register", deployment.client, {})
    assert refused.status_code == 403
    assert "Agent.Register" in refused.json()["detail"]


def test_a_call_around_the_gateway_is_refused(deployment: Deployment) -> None:
    """Reaching the service directly, a caller naming the agent gets no token: it lacks the secret."""
    direct = httpx.post(
        f"{deployment.system.service.url}/api/agent/register",
        json={"service_config": {"enforce_client_authz": False}},
        headers={"client-id": deployment.agent_id, "user-id": "attacker"},
        timeout=30,
    )
    assert direct.status_code == 401, direct.text
    assert "livekit_token" not in direct.text


def test_no_request_the_openapi_document_allows_makes_the_service_fail(deployment: Deployment) -> None:
    """Schemathesis generates requests from the running service's own OpenAPI document (valid and invalid
    bodies, paths, headers) and every answer must be something other than a 5xx."""
    schema = schemathesis.openapi.from_url(f"{deployment.system.service.url}/openapi.json")
    # what the gateway injects for the pre-authorized client; bodies and other headers are generated
    identity = {
        "client-id": deployment.client.app_id,
        "user-id": "fuzzing-user",
        "x-bayer-user": "fuzz@example.com",
        "user-profile": json.dumps({"displayName": "Fuzz", "cwid": "FUZZ1"}),
        "x-gateway-secret": deployment.system.gateway_secret,
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/agent/register", "/api/session/start", "/livekit/webhook"}
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=identity, checks=[not_a_server_error])

        no_server_error()
    assert calls >= 4 * len(operations)


def test_no_token_or_secret_appears_in_any_log_or_span(deployment: Deployment) -> None:
    assert_no_secret_in_logs_or_spans(deployment.system)
