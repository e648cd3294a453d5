"""The agent relay (issue 23): one ``lkps serve`` process holding many idle worker connections, and the time a
job request takes from LiveKit to the right worker through the relay against a direct connection.

The stack: the LiveKit stand-in (in this process, its own thread), ``lkps serve`` on SQLite (gateway mode, no
Entra), and ``--relay-workers`` raw protocol workers (``tests/support/raw_worker.py``'s protocol, in this
process's event loop), each of its own agent. Memory: the service's RSS once it has answered one registration
and relayed one worker, then with every worker connected and registered through it (added RSS = the
difference). Forwarding: for ``--relay-jobs`` rooms, each dispatching one randomly chosen agent, the time from
asking the stand-in to create the room to that agent's worker reading the job's ``AvailabilityRequest``;
once with every worker connected through the relay, once with every worker connected to the stand-in directly
(a LiveKit-signed token), same stand-in, same run. Added p99 = relay p99 - direct p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from livekit import api
from livekit.protocol import agent
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from bench.machine import Machine
from bench.memory import tree_memory
from bench.processes import PYTHON, Child, clean_environment, free_port, http_ok, wait_until
from bench.service_stack import GATEWAY_SECRET, GATEWAY_SECRET_HEADER
from bench.stats import fmt, median
from livekit_platform_testing.livekit import LiveKitStandIn

API_KEY = "APIbenchRelay"
API_SECRET = "lkps-bench-relay-secret-" + "s" * 40
AGENT_SECRET = "lkps-bench-relay-agent-key-" + "a" * 40


@dataclass(frozen=True)
class RelayResults:
    machine: Machine
    workers: int
    jobs: int
    rss_before_mib: float
    rss_after_mib: float
    relay_ms: list[float]
    direct_ms: list[float]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class _Worker:
    """A raw protocol worker that records when each job request reaches it and declines it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self.ws = ws
        self.offered: dict[str, float] = {}
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.BINARY:
                continue
            message = agent.ServerMessage()
            message.ParseFromString(frame.data)
            if message.HasField("availability"):
                job = message.availability.job
                self.offered[job.room.name] = time.perf_counter()
                self.arrived.set()
                decline = agent.AvailabilityResponse(job_id=job.id, available=False, terminate=True)
                await self.ws.send_bytes(agent.WorkerMessage(availability=decline).SerializeToString())


async def _connect(session: aiohttp.ClientSession, url: str, token: str, name: str) -> _Worker:
    ws = await session.ws_connect(f"{url}/agent", headers={"Authorization": f"Bearer {token}"})
    register = agent.WorkerMessage(
        register=agent.RegisterWorkerRequest(type=agent.JT_ROOM, agent_name=name, version="bench")
    )
    await ws.send_bytes(register.SerializeToString())
    reply = agent.ServerMessage()
    reply.ParseFromString(await ws.receive_bytes(timeout=30))
    if not reply.HasField("register"):
        raise RuntimeError(f"worker {name} was not registered: {reply}")
    worker = _Worker(ws)
    worker.task = asyncio.create_task(worker.run())
    return worker


def _room_token(room: str, agent_name: str) -> str:
    config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name=agent_name)])
    return (
        api.AccessToken(API_KEY, API_SECRET)
        .with_identity(f"client-{room}")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(config)
        .with_ttl(dt.timedelta(minutes=10))
        .to_jwt()
    )


async def _forwarding(
    livekit: LiveKitStandIn, workers: dict[str, _Worker], jobs: int, label: str
) -> list[float]:
    names = list(workers)
    out = []
    for serial in range(jobs):
        name = random.choice(names)  # noqa: S311 - a benchmark's choice, not a secret
        room = f"bench-{label}-{serial}-{uuid.uuid4().hex[:6]}"
        worker = workers[name]
        worker.arrived.clear()
        token = _room_token(room, name)
        started = time.perf_counter()
        await asyncio.to_thread(livekit.join, token)
        while room not in worker.offered:
            await asyncio.wait_for(worker.arrived.wait(), 30)
            worker.arrived.clear()
        out.append((worker.offered[room] - started) * 1000)
    return out


@contextlib.asynccontextmanager
async def _workers(
    session: aiohttp.ClientSession, url: str, tokens: dict[str, str]
) -> AsyncIterator[dict[str, _Worker]]:
    workers: dict[str, _Worker] = {}
    try:
        names = list(tokens)
        for start in range(0, len(names), 50):  # 50 handshakes at a time
            batch = names[start : start + 50]
            connected = await asyncio.gather(*(_connect(session, url, tokens[n], n) for n in batch))
            workers.update(zip(batch, connected, strict=True))
        yield workers
    finally:
        for worker in workers.values():
            if worker.task is not None:
                worker.task.cancel()
            await worker.ws.close()


async def _measure(workers: int, jobs: int, work: Path) -> RelayResults:
    machine = Machine()
    with LiveKitStandIn(api_key=API_KEY, api_secret=API_SECRET) as livekit:
        livekit.availability_timeout = 30.0
        port = free_port()
        service = Child(
            "lkps-relay",
            [PYTHON, "-m", "lkps", "serve", "--host", "127.0.0.1", "--port", str(port)],
            clean_environment(
                LIVEKIT_URL=livekit.ws_url,
                LIVEKIT_API_KEY=API_KEY,
                LIVEKIT_API_SECRET=API_SECRET,
                LKPS_AGENT_TOKEN_SECRET=AGENT_SECRET,
                LKPS_DATABASE_URL=f"sqlite:///{work / 'lkps-relay.db'}",
                LKPS_MIGRATE_ON_START="true",
                LKPS_IDENTITY_MODE="gateway",
                LKPS_GATEWAY_SHARED_SECRET=GATEWAY_SECRET,
                LKPS_AUDIT_BATCH_SIZE="1000",
            ),
            work,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_ok(f"{url}/api/health"), timeout=60, what="lkps healthy", child=service)
            names = [str(uuid.uuid4()) for _ in range(workers)]
            relay_tokens: dict[str, str] = {}
            relay_url = ""
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                for name in names:
                    response = await client.post(
                        "/api/agent/register",
                        json={"service_config": {"enforce_client_authz": False}},
                        headers={"client-id": name, "user-id": name, GATEWAY_SECRET_HEADER: GATEWAY_SECRET},
                    )
                    response.raise_for_status()
                    relay_tokens[name] = response.json()["livekit_token"]
                    relay_url = response.json()["livekit_url"]
            direct_tokens = {
                name: api.AccessToken(API_KEY, API_SECRET)
                .with_identity(f"agent-{name}-direct")
                .with_grants(api.VideoGrants(agent=True))
                .to_jwt()
                for name in names
            }
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                first = {names[0]: relay_tokens[names[0]]}
                async with _workers(session, relay_url, first):
                    await asyncio.sleep(2)
                    before = tree_memory(service.pid).main_rss_mib
                await asyncio.sleep(1)
                async with _workers(session, relay_url, relay_tokens) as relayed:
                    await asyncio.sleep(3)
                    after = tree_memory(service.pid).main_rss_mib
                    await _forwarding(livekit, relayed, min(10, jobs), "warm")
                    relay_ms = await _forwarding(livekit, relayed, jobs, "relay")
                async with _workers(session, livekit.ws_url, direct_tokens) as direct:
                    await _forwarding(livekit, direct, min(10, jobs), "warm-direct")
                    direct_ms = await _forwarding(livekit, direct, jobs, "direct")
        finally:
            service.stop()
    machine.finish()
    return RelayResults(machine, workers, jobs, before, after, relay_ms, direct_ms)


def run(workers: int, jobs: int, work: Path) -> RelayResults:
    return asyncio.run(_measure(workers, jobs, work))


def markdown(results: RelayResults) -> str:
    added_rss = results.rss_after_mib - results.rss_before_mib
    relay_p99, direct_p99 = percentile(results.relay_ms, 0.99), percentile(results.direct_ms, 0.99)
    added_p99 = relay_p99 - direct_p99
    lines = [
        "## Agent relay (issue 23)",
        "",
        results.machine.markdown(),
        "- Setup: `bench/relay_bench.py`: `lkps serve` (SQLite, gateway mode) relaying"
        f" {results.workers:,} idle raw protocol workers (one agent each) to the LiveKit stand-in; then job"
        f" requests for {results.jobs:,} rooms, each dispatching a random one of those agents, through the"
        " relay and, in the same run, with the same workers connected to the stand-in directly. Latency:"
        " from asking the stand-in to create the room to the worker reading its `AvailabilityRequest`.",
        "",
        "| measure | value | target | met |",
        "|---|---:|---|---|",
        f"| service RSS, 1 worker (MiB) | {fmt(results.rss_before_mib, 1)} | | |",
        f"| service RSS, {results.workers:,} workers (MiB) | {fmt(results.rss_after_mib, 1)} | | |",
        f"| added RSS for {results.workers:,} idle workers (MiB) | {fmt(added_rss, 1)} | ≤ 150 |"
        f" {'yes' if added_rss <= 150 else 'no'} |",
        f"| job request p50, direct / relay (ms) | {fmt(median(results.direct_ms), 2)} /"
        f" {fmt(median(results.relay_ms), 2)} | | |",
        f"| job request p99, direct / relay (ms) | {fmt(direct_p99, 2)} / {fmt(relay_p99, 2)} | | |",
        f"| added p99 (ms) | {fmt(added_p99, 2)} | ≤ 2 | {'yes' if added_p99 <= 2 else 'no'} |",
        "",
        "Agent start -> registered through the platform (its relay) against a direct connection is the SDK"
        " section's `start -> registered` row: the SDK worker there connects through `lkps serve`'s relay.",
    ]
    return "\n".join(lines)
