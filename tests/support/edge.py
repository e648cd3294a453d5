"""Helpers for the adversarial suite (``tests/adversarial``): the service behind a real uvicorn server on a
loopback port as ``lkps serve`` runs it (its connection limits included), raw sockets that say exactly the
bytes an attacker sends, and the memory a burst leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from lkps.api.connections import ConnectionLimits
from lkps.app import create_app, server_config
from lkps.settings import Settings

GATEWAY_SECRET = "gateway-shared-secret-" + "g" * 32
CLIENT_ID = "5b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"


class RefusingAuthorizer:
    """A ``ClientAuthorizer`` that never reaches Graph (these tests register agents without client authz)."""

    async def is_authorized(self, agent_app_id: str, client_app_id: str) -> bool:
        return False

    def denial_reason(self, agent_app_id: str, client_app_id: str) -> str:
        return "refused"

    async def aclose(self) -> None:
        return None


def gateway_headers(
    agent_or_client_id: str = CLIENT_ID, *, secret: str | None = GATEWAY_SECRET, **extra: str
) -> dict[str, str]:
    """What the gateway sends: the caller's client ID, a user ID, and the shared secret."""
    headers = {"client-id": agent_or_client_id, "user-id": str(uuid.uuid4()), **extra}
    if secret is not None:
        headers["x-gateway-secret"] = secret
    return headers


OPEN_AGENT = {"service_config": {"enforce_client_authz": False}}
"""A registration body: any client may start a session with the agent (these tests never reach Graph)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    port: int
    server: uvicorn.Server
    app: ASGIApp

    @property
    def connections(self) -> int:
        """Connections the server holds now (HTTP and websocket)."""
        return len(self.server.server_state.connections)


@contextlib.asynccontextmanager
async def served(settings: Settings, app: ASGIApp | None = None) -> AsyncIterator[Served]:
    """``app`` (default: the service for ``settings``) on ``lkps serve``'s uvicorn configuration, with the
    connection limits of ``settings``."""
    if app is None:
        app = create_app(settings, authorizer=RefusingAuthorizer())
    port = free_port()
    services = getattr(app.state, "services", None) if isinstance(app, Starlette) else None
    refusals = None if services is None else services.refusals
    config = server_config(app, "127.0.0.1", port, settings.speedups, ConnectionLimits.of(settings), refusals)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), what="uvicorn started")
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", port, server, app)
    finally:
        server.should_exit = True
        await task


async def until(condition: Callable[[], bool], *, what: str, within: float = 30.0) -> None:
    """Wait until ``condition()`` holds; fail naming ``what`` if it never does (a bound, not a timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


async def raw_request(port: int, data: bytes, *, read_limit: int = 1 << 20) -> bytes:
    """Send ``data`` as is on a new connection and read the answer until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        answer = b""
        while len(answer) < read_limit:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
            except (ConnectionError, asyncio.TimeoutError):
                break
            if not chunk:
                break
            answer += chunk
        return answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 if there is none)."""
    line = answer.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[0].startswith(b"HTTP/") else 0


def head(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "host: lkps"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def retained_after(burst: Callable[[], Awaitable[Any]]) -> int:
    """Bytes of Python memory still allocated after ``burst()`` than before it (tracemalloc, collected)."""
    gc.collect()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        await burst()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


def app_services(app: ASGIApp) -> Any:
    assert isinstance(app, Starlette)
    return app.state.services


async def peak_during(burst: Callable[[], Awaitable[Any]]) -> int:
    """The most Python memory allocated at once during ``burst()`` beyond what was allocated before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await burst()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before
