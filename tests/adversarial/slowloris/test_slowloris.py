"""Slow and silent clients: idle sockets, half-sent heads and heads dripped a byte at a time are closed after
``LKPS_IDLE_TIMEOUT``/``LKPS_HEADER_TIMEOUT`` while the service answers real requests; past
``LKPS_MAX_CONNECTIONS`` a connection is closed at once; upgraded websockets are subject to neither timeout
(issue 24, item 6)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from lkps.settings import Settings
from tests.support.edge import OPEN_AGENT, gateway_headers, served, until

TIMEOUT = "1"


class Attacker:
    """Sockets that hold a connection without completing a request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.drippers: list[asyncio.Task[None]] = []
        self.ended = 0

    async def open(self, count: int, first_bytes: bytes = b"") -> None:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            if first_bytes:
                writer.write(first_bytes)
            self.streams.append((reader, writer))

    async def drip(self, count: int) -> None:
        """Connections sending a header a byte every 200 ms: each byte is progress; none ends the head."""
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.streams.append((reader, writer))
            self.drippers.append(asyncio.create_task(self._drip(writer)))

    async def _drip(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\nx-slow: ")
        with contextlib.suppress(ConnectionError):
            while not writer.is_closing():
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.2)

    def closed_by_server(self) -> int:
        return self.ended

    async def watch(self) -> None:
        """Read every socket until the server ends it (a close, or a reset if it closed with bytes unread)."""

        async def read(reader: asyncio.StreamReader) -> None:
            with contextlib.suppress(ConnectionError):
                while await reader.read(4096):
                    pass
            self.ended += 1

        await asyncio.gather(*(read(reader) for reader, _ in self.streams))

    async def close(self) -> None:
        for task in self.drippers:
            task.cancel()
        for _, writer in self.streams:
            writer.close()


async def test_500_idle_and_half_open_sockets_are_closed_and_real_requests_are_answered(
    env: dict[str, str],
) -> None:
    settings = Settings.from_env({**env, "LKPS_HEADER_TIMEOUT": TIMEOUT, "LKPS_IDLE_TIMEOUT": TIMEOUT})
    async with served(settings) as server:
        attacker = Attacker(server.port)
        try:
            await attacker.open(200)  # never a byte
            await attacker.open(250, b"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\ncontent-")
            await attacker.drip(50)
            watching = asyncio.create_task(attacker.watch())

            async with httpx.AsyncClient(base_url=server.url) as client:
                answered = await client.post(
                    "/api/agent/register", json=OPEN_AGENT, headers=gateway_headers(str(uuid.uuid4()))
                )
            await until(
                lambda: attacker.closed_by_server() == 500, what="all 500 sockets closed by the server"
            )
            await watching
        finally:
            await attacker.close()
        await until(lambda: server.connections == 0, what="the server holding no connection")

    assert answered.status_code == 200, answered.text


async def test_a_connection_past_the_cap_is_closed_at_once(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "LKPS_MAX_CONNECTIONS": "16", "LKPS_IDLE_TIMEOUT": "600"})
    async with served(settings) as server:
        attacker = Attacker(server.port)
        try:
            await attacker.open(16)
            await until(lambda: server.connections == 16, what="16 connections held")
            await attacker.open(1)
            extra_reader = attacker.streams[-1][0]
            rest = await asyncio.wait_for(extra_reader.read(), 10)  # a bound: held, it would never end
            held = [reader.at_eof() for reader, _ in attacker.streams[:16]]
        finally:
            await attacker.close()

    assert rest == b""
    assert extra_reader.at_eof()
    assert not any(held)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message)


async def test_upgraded_websockets_outlive_both_timeouts_and_count_towards_the_cap(
    env: dict[str, str],
) -> None:
    """The agents' relay keeps idle websockets open for hours: neither timeout applies once upgraded."""
    settings = Settings.from_env(
        {**env, "LKPS_HEADER_TIMEOUT": "0.3", "LKPS_IDLE_TIMEOUT": "0.3", "LKPS_MAX_CONNECTIONS": "16"}
    )
    app = Starlette(routes=[WebSocketRoute("/relay", echo)])
    async with served(settings, app=app) as server:
        url = f"ws://127.0.0.1:{server.port}/relay"
        sockets = [await websockets.connect(url, ping_interval=None) for _ in range(16)]
        try:
            await asyncio.sleep(1.5)  # five times both timeouts, idle
            for i, ws in enumerate(sockets):
                await ws.send(f"still here {i}")
                assert await ws.recv() == f"still here {i}"
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            refused = await asyncio.wait_for(reader.read(), 10)
            writer.close()
        finally:
            for ws in sockets:
                await ws.close()

    assert refused == b""
