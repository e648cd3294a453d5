"""Shutdown keeps every audit row: each registration and session start answered 200 has its row in
PostgreSQL after ``lkps serve`` stops, on SIGTERM in the middle of load (the pod's path) and with the queue
non-empty when the lifespan ends, with speedups on and off."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from livekit import api

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.settings import Settings
from tests.support.edge import GATEWAY_SECRET
from tests.support.serve_process import lkps_serve
from tests.support.service import (
    AGENT_KEY_ID,
    AGENT_SECRET,
    client_headers,
    fetch_rows,
    gateway_headers,
    running_app,
    service_env,
)

pytestmark = pytest.mark.timeout(180)
# lkps serve in gateway mode takes requests that prove they came through the gateway
PROOF = {"x-gateway-secret": GATEWAY_SECRET}


@pytest.fixture
def extra_env() -> dict[str, str]:
    """More settings for ``served`` (a test parametrizes it)."""
    return {}


@pytest.fixture
def served(
    tmp_path: Path, livekit_standin: LiveKitStandIn, db_url: str, speedups: str, extra_env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``lkps serve`` on PostgreSQL (a migrated, emptied database); its URL, process and log file."""
    log = tmp_path / "lkps.log"
    env = service_env(
        livekit_standin.ws_url,
        db_url,
        LKPS_LOG_FORMAT="json",
        LKPS_SPEEDUPS=speedups,
        # Small batches and a slow-ish drain keep records queued when the signal comes.
        LKPS_AUDIT_BATCH_SIZE="5",
        LKPS_AUDIT_FLUSH_TIMEOUT="60",
        LKPS_GATEWAY_SHARED_SECRET=GATEWAY_SECRET,
        **extra_env,
    )
    with lkps_serve(env, log) as (url, process):
        yield url, process, log


AGENTS = [f"0b9a3c1e-1111-2222-3333-{i:012d}" for i in range(8)]


async def load(url: str, stop: asyncio.Event, registrations: set[str], rooms: set[str]) -> None:
    """Registrations and session starts from 16 clients until the service stops answering after ``stop``:
    the registration IDs and room names of every 200 go to ``registrations`` and ``rooms``."""
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)

    async def client(n: int) -> None:
        agent = AGENTS[n % len(AGENTS)]
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while True:
                try:
                    if n % 2:
                        response = await http.post(
                            "/api/agent/register",
                            json={"service_config": {"enforce_client_authz": False}},
                            headers={**gateway_headers(client_id=agent), **PROOF},
                        )
                        if response.status_code == 200:
                            identity = verifier.verify(response.json()["livekit_token"]).identity
                            registrations.add(identity.rsplit(f"{agent}-", 1)[1])
                    else:
                        response = await http.post(
                            "/api/session/start",
                            json={"agent_entra_app_id": agent},
                            headers={**client_headers(), **PROOF},
                        )
                        if response.status_code == 200:
                            rooms.add(response.json()["room_name"])
                except httpx.TransportError:
                    if stop.is_set():
                        return
                    await asyncio.sleep(0.01)

    # Every agent registered first, so session starts find them.
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for agent in AGENTS:
            body = {"service_config": {"enforce_client_authz": False}}
            first = await http.post(
                "/api/agent/register", json=body, headers={**gateway_headers(client_id=agent), **PROOF}
            )
            assert first.status_code == 200
            identity = verifier.verify(first.json()["livekit_token"]).identity
            registrations.add(identity.rsplit(f"{agent}-", 1)[1])
    await asyncio.gather(*(client(n) for n in range(16)))


async def test_sigterm_under_load_keeps_every_answered_request_audited(
    served: tuple[str, subprocess.Popen[bytes], Path], db_url: str
) -> None:
    url, process, log = served
    stop = asyncio.Event()
    registrations: set[str] = set()
    rooms: set[str] = set()
    running = asyncio.create_task(load(url, stop, registrations, rooms))
    deadline = time.monotonic() + 60
    while len(registrations) < 300 or len(rooms) < 300:  # under load, with records queued
        assert time.monotonic() < deadline, (len(registrations), len(rooms))
        assert not running.done()
        await asyncio.sleep(0.05)
    stop.set()
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(running, 90)
    code = await asyncio.to_thread(process.wait, 90)
    output = log.read_text()
    assert code in (0, -signal.SIGTERM), output
    assert len(registrations) > 20
    assert len(rooms) > 20

    stored = await fetch_rows(db_url, "SELECT id FROM agent_registrations")
    missing = registrations - {str(row["id"]) for row in stored}
    assert not missing, f"{len(missing)} of {len(registrations)} registrations lost\n{output[-3000:]}"
    sessions = await fetch_rows(db_url, "SELECT room_name FROM sessions")
    lost_rooms = rooms - {row["room_name"] for row in sessions}
    assert not lost_rooms, f"{len(lost_rooms)} of {len(rooms)} session starts lost\n{output[-3000:]}"
    assert "records lost" not in output


async def test_the_lifespan_ending_with_a_full_queue_writes_it_all(settings: Settings) -> None:
    # One record a batch: when the lifespan ends, nearly all of them are still queued.
    settings = settings.model_copy(update={"audit_batch_size": 1})
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)
    registrations: set[str] = set()
    async with running_app(settings) as app:
        for n in range(400):
            agent = AGENTS[n % len(AGENTS)]
            response = await app.register(agent, enforce=False)
            identity = verifier.verify(response.json()["livekit_token"]).identity
            registrations.add(identity.rsplit(f"{agent}-", 1)[1])
        assert app.services.audit.pending > 0
    stored = await fetch_rows(settings.database_url, "SELECT id FROM agent_registrations")
    assert registrations == {str(row["id"]) for row in stored}


@pytest.mark.parametrize("extra_env", [{"LKPS_SHUTDOWN_DRAIN_TIMEOUT": "2"}])
async def test_a_request_held_open_cannot_keep_shutdown_from_flushing_the_audit_queue(
    served: tuple[str, subprocess.Popen[bytes], Path], db_url: str
) -> None:
    # A client that sends headers and part of a body, then nothing: without a drain limit uvicorn waits for it
    # forever after SIGTERM, the lifespan (the audit flush) never runs and Kubernetes' SIGKILL ends the pod.
    url, process, log = served
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)
    registrations = set()
    async with httpx.AsyncClient(base_url=url) as http:
        for agent in AGENTS:
            response = await http.post(
                "/api/agent/register", json={}, headers={**gateway_headers(client_id=agent), **PROOF}
            )
            identity = verifier.verify(response.json()["livekit_token"]).identity
            registrations.add(identity.rsplit(f"{agent}-", 1)[1])
    _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(
        b"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\ncontent-type: application/json\r\n"
        b"client-id: " + AGENTS[0].encode() + b"\r\ncontent-length: 100\r\n\r\n{"
    )
    await writer.drain()
    await asyncio.sleep(0.3)  # the request is in flight, waiting for the rest of its body
    process.send_signal(signal.SIGTERM)
    try:
        # The grace period in the chart's terms: drain (2 s) + audit flush (LKPS_AUDIT_FLUSH_TIMEOUT) + 5 s.
        code = await asyncio.to_thread(process.wait, 2 + 60 + 5)
    finally:
        writer.close()
    output = log.read_text()
    assert code in (0, -signal.SIGTERM), output
    assert "lkps stopped" in output
    stored = await fetch_rows(db_url, "SELECT id FROM agent_registrations")
    assert registrations <= {str(row["id"]) for row in stored}
