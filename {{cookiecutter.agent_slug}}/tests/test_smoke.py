"""Smoke test: the agent process registers through the SDK on the stand-ins and receives a dispatched job."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from conftest import AgentProcess, wait_for
from offline_stack import AGENT_APP_ID, AGENT_NAME, OfflineStack


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback probe URL)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def test_agent_registers_with_workload_identity_and_receives_a_dispatched_job(
    stack: OfflineStack, start_agent: Callable[[], AgentProcess]
) -> None:
    agent = start_agent()

    worker = stack.livekit.wait_for_worker(AGENT_NAME, timeout=120)
    # LiveKit saw the token the platform minted for this identity, never one the worker signed itself
    assert worker.connection.claims is not None
    assert worker.connection.claims.issuer == stack.livekit.api_key
    assert worker.connection.claims.identity == f"agent-{AGENT_APP_ID}"
    assert stack.platform.registered_app_ids[0] == AGENT_APP_ID
    wait_for(
        lambda: http_status(f"http://127.0.0.1:{agent.readiness_port}/ready") == 200,
        timeout=20,
        what="readiness 200",
        output=lambda: agent.output,
    )
    assert http_status(f"http://127.0.0.1:{agent.health_port}/") == 200

    job_ids = stack.dispatch("smoke-room", metadata='{"ticket": 42}')
    assert job_ids, "the room config's dispatch reached no worker"
    job = stack.livekit.wait_for_job_status(job_ids[0], "JS_RUNNING", timeout=60)
    assert job.worker_id == worker.id

    # SIGTERM drains and exits cleanly (the pod's grace period relies on it)
    assert agent.terminate(timeout=60) == 0
