"""``lkps agents revoke`` while the agent's Entra role stays: the relay closes the worker and refuses the
token it holds, the SDK asks the platform for a new token at once (its next renewal is half an hour
away), Entra allows it, and the worker is back and serving.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.system import System
from tests.support.deployment import Deployment, deploy, eventually, start_system
from tests.support.postgres import PostgresCluster


@pytest.fixture(scope="module")
def system(postgres: PostgresCluster, e2e_workdir: Path) -> Iterator[System]:
    yield from start_system(
        e2e_workdir,
        postgres.create_database("e2e_relay_reregister"),
        identity_mode="entra",
        agent_token_ttl=3600,  # the SDK's next renewal is half an hour away
        service_env={"LKPS_RELAY_CHECK_INTERVAL": "0.5"},
    )


@pytest.fixture(scope="module")
def deployment(system: System) -> Deployment:
    return deploy(system, "reregister")


def test_a_revoked_agent_whose_role_stays_registers_again_at_once_and_serves(deployment: Deployment) -> None:
    system = deployment.system
    worker = deployment.worker()
    before = len(deployment.registrations())
    revoked = subprocess.run(
        [sys.executable, "-m", "lkps", "agents", "revoke", deployment.agent_id],
        env=system.service.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr
    back = deployment.worker(not_in=(worker.id,))
    eventually(lambda: len(deployment.registrations()) == before + 1, timeout=10, what="one new registration")
    assert back.claims is not None
    assert back.claims.identity == deployment.registrations()[-1]["worker_identity"]
    assert "renewing the platform token now" in deployment.agent.output
    room, participant, job_id = deployment.session({"hold": True})
    job = system.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
    assert job.worker_id == back.id
    assert deployment.agent.running
    system.livekit.leave(room, participant)
    assert deployment.ended(room)["status"] == "completed"
