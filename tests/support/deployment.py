"""Whole-system test helpers: an SDK agent deployed into the harness's system (``demo/``), polling, scanning
patterns."""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.processes import ManagedProcess, free_port, wait_for
from demo.system import System, SystemOptions
from livekit_platform_testing.livekit import Worker
from livekit_platform_testing.tenant import App, WorkloadIdentity
from tests.support.paths import REPO

AGENT_SCRIPT = REPO / "tests" / "e2e" / "agents" / "e2e_agent.py"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.")
FINAL = ("completed", "agent_never_joined", "failed")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def eventually(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy and return it (bounded, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f}s (last value: {value!r})")
        time.sleep(0.2)


@dataclass
class Deployment:
    """One system with one SDK agent running in it (workload identity) and one pre-authorized client."""

    system: System
    identity: WorkloadIdentity
    agent: ManagedProcess
    client: App
    jobs_file: Path
    readiness_port: int

    @property
    def agent_id(self) -> str:
        return self.identity.app.app_id

    def worker(self, *, not_in: tuple[str, ...] = ()) -> Worker:
        return self.system.livekit.wait_for_worker(self.agent_id, timeout=60, not_in=not_in)

    def jobs(self) -> list[dict[str, Any]]:
        if not self.jobs_file.exists():
            return []
        return [json.loads(line) for line in self.jobs_file.read_text().splitlines() if line.strip()]

    def job_record(self, job_id: str) -> dict[str, Any]:
        return eventually(
            lambda: next((j for j in self.jobs() if j["job_id"] == job_id), None),
            timeout=60,
            what=f"the agent recording job {job_id}",
        )

    def registrations(self) -> list[dict[str, Any]]:
        return self.system.rows(
            "SELECT * FROM agent_registrations WHERE entra_app_id = :agent ORDER BY issued_at",
            agent=self.agent_id,
        )

    def session(self, metadata: dict[str, Any] | None = None) -> tuple[str, str, str]:
        """Start a session as the client app and join it; returns (room, participant identity, job id)."""
        response = self.system.start_session(self.client, self.agent_id, metadata=metadata)
        assert response.status_code == 200, response.text
        body = response.json()
        joined = self.system.livekit.join(body["participant_token"])
        assert joined.job_ids, "the participant token's room config dispatched no agent"
        return body["room_name"], joined.identity, joined.job_ids[0]

    def lifecycle(self, room: str) -> dict[str, Any] | None:
        rows = self.system.rows("SELECT * FROM sessions WHERE room_name = :room", room=room)
        return rows[0] if rows else None

    def ended(self, room: str, *, timeout: float = 30) -> dict[str, Any]:
        """The room's row once it has ended and also holds what session start knew (client, request time).
        Those facts travel through the audit writer, which never holds up a response, while each webhook is
        stored before it is answered: a short session can read as ended a moment before they land."""
        return eventually(
            lambda: (
                (r := self.lifecycle(room)) and r["status"] in FINAL and r["requested_at"] is not None and r
            ),
            timeout=timeout,
            what="the session ended and recorded",
        )


def deploy(system: System, name: str, *, platform_url: str | None = None) -> Deployment:
    """Add an agent identity and a client app to the tenant and start the agent; wait until it is ready.
    ``platform_url``: where the agent registers (default: where clients call, ``system.api_url``)."""
    identity = system.tenant.add_workload_agent(
        system.workdir / f"{name}-sa-token", display_name=f"{name} agent", service_account=name
    )
    client = system.tenant.add_client(f"{name} client", authorized_for=[identity.app.app_id])
    readiness_port = free_port()
    jobs_file = system.workdir / f"{name}-jobs.jsonl"
    env = {
        **system.agent_env(identity, service_name=f"{name}-agent", readiness_port=readiness_port),
        "E2E_AGENT_OUTPUT": str(jobs_file),
    }
    if platform_url is not None:
        env["LIVEKIT_PLATFORM_URL"] = platform_url
    agent = system.start_agent(f"{name} agent", [sys.executable, str(AGENT_SCRIPT), "start"], env)
    deployment = Deployment(system, identity, agent, client, jobs_file, readiness_port)
    try:
        deployment.worker()
        wait_for(
            lambda: http_status(f"http://127.0.0.1:{readiness_port}/ready") == 200,
            timeout=30,
            what="the agent's readiness answering 200",
        )
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\nagent output:\n{agent.output[-4000:]}") from None
    return deployment


def start_system(workdir: Path, database_url: str, **options: Any) -> Iterator[System]:
    """The whole system on a fresh database; every process it started is stopped when the caller is done."""
    with System(SystemOptions(workdir=workdir, database_url=database_url, **options)) as system:
        yield system


def assert_no_secret_in_logs_or_spans(system: System) -> None:
    """No process log, in-process log or received span holds a JWT or any secret the system knows."""
    secrets = system.secrets()
    for name, text in system.logs().items():
        assert text, f"{name} logged nothing: the scan would prove nothing"
        found = JWT.search(text)
        assert found is None, f"{name} logged a JWT (starting {found.group()[:12]}...)"
        for secret_name, secret in secrets.items():
            assert secret not in text, f"{name} logged {secret_name}"
    spans = system.otlp.spans
    assert {"platform.register", "livekit.connect"} <= {s.name for s in spans}
    for span in spans:
        values = [span.name, span.status_message, *map(str, span.attributes.values())]
        values += [str(e) for e in span.events] + [str(v) for v in span.resource.values()]
        for value in values:
            assert not JWT.search(value), f"span {span.name} carries a JWT"
            for secret_name, secret in secrets.items():
                assert secret not in value, f"span {span.name} carries {secret_name}"
