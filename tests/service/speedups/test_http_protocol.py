"""Speedup ``http`` (lkps.speedups.http_protocol): corked writes (one write per connection and loop
iteration), alone over a recording transport and under a real uvicorn server with the service's app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lkps.settings import Settings
from lkps.speedups.http_protocol import WRITE_THROUGH, CorkedHttpToolsProtocol, CorkedTransport, _flushers
from tests.support.service import gateway_headers, new_agent_id, served_app


@pytest.fixture
def speedups() -> str:
    """The served app's other speedups on: the protocols compared here are named explicitly."""
    return "on"


class Recording(asyncio.Transport):
    """The wrapped transport's side: what reached it, and in how many writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def write_eof(self) -> None:
        self.events.append("eof")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7


async def next_iteration() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_writes_of_one_iteration_leave_in_one_write_at_its_end() -> None:
    raw = Recording()
    corked = CorkedTransport(raw, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    corked.write(memoryview(b"{}"))
    corked.write(b"")
    assert raw.writes == []
    assert corked.get_write_buffer_size() == 7 + len(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
    await next_iteration()
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    corked.write(b"next")
    await next_iteration()
    assert raw.writes[1:] == [b"next"]


async def test_every_connection_is_written_in_the_same_iteration() -> None:
    loop = asyncio.get_running_loop()
    raws = [Recording() for _ in range(3)]
    corked = [CorkedTransport(raw, loop) for raw in raws]
    for n, transport in enumerate(corked):
        transport.write(b"head%d" % n)
        transport.write(b"body%d" % n)
    await asyncio.sleep(0)  # one iteration
    assert [raw.writes for raw in raws] == [[b"head0body0"], [b"head1body1"], [b"head2body2"]]


async def test_close_and_eof_write_what_is_held_first_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    raw = Recording()
    corked = CorkedTransport(raw, loop)
    corked.write(b"last words")
    corked.close()
    assert raw.events == ["write", "close"]
    assert raw.writes == [b"last words"]

    raw = Recording()
    corked = CorkedTransport(raw, loop)
    corked.writelines([b"a", b"b"])
    corked.write_eof()
    assert raw.events == ["write", "eof"]
    assert raw.writes == [b"ab"]

    raw = Recording()
    corked = CorkedTransport(raw, loop)
    corked.write(b"never sent")
    corked.abort()
    await next_iteration()
    assert raw.events == ["abort"]


async def test_nothing_is_written_to_a_transport_that_closed_meanwhile() -> None:
    raw = Recording()
    corked = CorkedTransport(raw, asyncio.get_running_loop())
    corked.write(b"too late")
    raw.closing = True  # the peer went away (connection_lost) before the iteration ended
    await next_iteration()
    assert raw.writes == []


async def test_a_large_body_goes_out_at_once_after_what_was_held() -> None:
    """Held bytes never pile up past the transport's high-water mark: its flow control stays in charge."""
    raw = Recording()
    corked = CorkedTransport(raw, asyncio.get_running_loop())
    corked.write(b"headers\r\n\r\n")
    body = b"x" * WRITE_THROUGH
    corked.write(body)
    assert raw.writes == [b"headers\r\n\r\n" + body]
    assert corked.get_write_buffer_size() == 7
    await next_iteration()
    assert len(raw.writes) == 1


class _CountingTransport:
    """Stands between uvloop's transport and the protocol, counting the writes that reach the socket."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@contextlib.asynccontextmanager
async def counted_server(
    settings: Settings, protocol: type[HttpToolsProtocol]
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """The service's app on ``lkps serve``'s uvicorn config with ``protocol``, its socket writes counted."""
    writes: list[bytes] = []

    class Counted(protocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CountingTransport(transport, writes))

    async with served_app(settings, http=Counted) as served:
        yield served.url, writes


async def _responses_and_writes(settings: Settings, protocol: type[HttpToolsProtocol]) -> tuple[int, int]:
    async with (
        counted_server(settings, protocol) as (url, writes),
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        register = await client.post(
            "/api/agent/register", json={}, headers=gateway_headers(client_id=new_agent_id())
        )
        assert register.status_code == 200, register.text
        assert register.json()["expires_in"] > 0
        refused = await client.post("/api/agent/register", json={}, headers={})
        assert refused.status_code == 400
        missing = await client.get("/nowhere")
        assert missing.status_code == 404
        spec = await client.get("/openapi.json")
        assert spec.status_code == 200
        assert spec.json()["paths"]
        return 4, len(writes)


async def test_each_response_of_the_service_reaches_the_socket_in_one_write(
    settings: Settings,
) -> None:
    responses, writes = await _responses_and_writes(settings, CorkedHttpToolsProtocol)
    assert writes == responses
    # uvicorn's own protocol writes the head and the body apart: what the corked one saves
    responses, writes = await _responses_and_writes(settings, HttpToolsProtocol)
    assert writes == 2 * responses


async def test_pipelined_requests_and_connection_close_are_answered_in_order(
    settings: Settings,
) -> None:
    async with counted_server(settings, CorkedHttpToolsProtocol) as (url, _writes):
        port = int(url.rsplit(":", 1)[1])
        request = (
            b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /openapi.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        received = await asyncio.to_thread(_exchange, port, request)
    first, rest = _response(received)
    second, rest = _response(rest)
    assert rest == b""
    assert first[0].startswith(b"HTTP/1.1 404 ")
    assert second[0].startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in second[0]
    assert second[1].startswith(b"{")  # all of it: what was held was written before the connection closed


def _response(data: bytes) -> tuple[tuple[bytes, bytes], bytes]:
    """One response off the front of ``data`` (head, body) and what follows it."""
    head, rest = data.split(b"\r\n\r\n", 1)
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(fields[b"content-length"])
    assert len(rest) >= length
    return (head, rest[:length]), rest[length:]


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return b"".join(_until_eof(sock))


def _until_eof(sock: socket.socket) -> Iterator[bytes]:
    while chunk := sock.recv(65536):
        yield chunk


def test_a_loop_that_is_gone_leaves_no_flusher_behind() -> None:
    async def corked_write() -> None:
        CorkedTransport(Recording(), asyncio.get_running_loop()).write(b"x")
        await next_iteration()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(corked_write())
    assert loop in _flushers
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None  # nothing of the corked protocol keeps it alive, so its entry has left as well
