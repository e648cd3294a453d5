"""The agent relay with a real SDK worker (livekit-agents) on the whole system: a renewal with a job in flight
keeps the worker's connection and its job; revoking the agent while it is connected closes its worker at once
and it drains and exits; the audit says which worker and registration served the session.

One system and one agent for the module (entra mode, 60 s agent tokens: a renewal every 30 s); the last test
revokes the agent.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.system import System
from livekit_platform_testing.tenant import REGISTER_ROLE
from tests.support.deployment import Deployment, deploy, eventually, start_system
from tests.support.postgres import PostgresCluster


@pytest.fixture(scope="module")
def system(postgres: PostgresCluster, e2e_workdir: Path) -> Iterator[System]:
    yield from start_system(
        e2e_workdir,
        postgres.create_database("e2e_relay"),
        identity_mode="entra",
        # below azure-identity's refresh margin: a renewal after the role is removed asks Entra again
        entra_token_lifetime=120,
        service_env={"LKPS_RELAY_CHECK_INTERVAL": "0.5"},
    )


@pytest.fixture(scope="module")
def deployment(system: System) -> Deployment:
    return deploy(system, "relay")


def test_a_renewal_with_a_job_in_flight_keeps_the_worker_connection_and_the_job(
    deployment: Deployment,
) -> None:
    system = deployment.system
    worker = deployment.worker()
    room, participant, job_id = deployment.session({"hold": True})
    system.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
    connected_with = deployment.registrations()[-1]
    # renewals until one is issued after the token the worker connected with has expired
    eventually(
        lambda: deployment.registrations()[-1]["issued_at"] > connected_with["expires_at"],
        timeout=120,
        what="renewals past the expiry of the token the worker connected with",
    )
    job = system.livekit.job(job_id)
    assert (job.status, job.worker_id) == ("JS_RUNNING", worker.id)
    registered = [w for w in system.livekit.workers if w.agent_name == deployment.agent_id]
    assert [(w.id, w.connected) for w in registered] == [(worker.id, True)]  # never reconnected
    served = system.rows(
        "SELECT worker_id, entra_app_id, registration_id FROM job_assignments WHERE room_name = :room",
        room=room,
    )
    assert [(r["worker_id"], r["entra_app_id"]) for r in served] == [(worker.id, deployment.agent_id)]
    assert served[0]["registration_id"] in {r["id"] for r in deployment.registrations()}
    system.livekit.leave(room, participant)


def test_a_revoked_agent_is_cut_off_while_connected_and_drains(deployment: Deployment) -> None:
    system = deployment.system
    worker = deployment.worker()
    system.tenant.revoke(deployment.agent_id, REGISTER_ROLE)
    revoked = subprocess.run(
        [sys.executable, "-m", "lkps", "agents", "revoke", deployment.agent_id],
        env=system.service.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr
    # closed by the relay's monitor, well before the agent's next renewal would have been refused
    eventually(
        lambda: not next(w for w in system.livekit.workers if w.id == worker.id).connected,
        timeout=10,
        what="the revoked agent's worker closed",
    )
    code = deployment.agent.wait(timeout=120)
    assert code != 0
    assert "the platform refused to renew the LiveKit token" in deployment.agent.output
    log = system.service.process.output
    assert "closing worker: agent revoked" in log
    assert not any(w.connected and w.agent_name == deployment.agent_id for w in system.livekit.workers)
