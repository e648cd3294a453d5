"""A client that half-closes its connection (``shutdown(SHUT_WR)``) after sending its request still gets the
answer, as uvicorn's own protocol gives it, with the speedups on (corked protocol) and on the plain path."""

from __future__ import annotations

import asyncio
import socket

import pytest
from livekit import api

from lkps.settings import Settings
from tests.support.service import AGENT_KEY_ID, AGENT_SECRET, gateway_headers, new_agent_id, served_app


def _half_closed_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # the request is all the client will send
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def _register_request() -> bytes:
    body = b'{"service_config": {"enforce_client_authz": false}}'
    headers = "".join(f"{k}: {v}\r\n" for k, v in gateway_headers(client_id=new_agent_id()).items())
    head = f"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\ncontent-length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


@pytest.mark.parametrize(
    "request_bytes",
    [_register_request(), b"GET /openapi.json HTTP/1.1\r\nhost: lkps\r\n\r\n"],
    ids=["register", "openapi"],
)
async def test_a_half_closed_request_is_answered_in_full(settings: Settings, request_bytes: bytes) -> None:
    async with served_app(settings) as served:
        port = int(served.url.rsplit(":", 1)[1])
        received = await asyncio.to_thread(_half_closed_exchange, port, request_bytes)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), received[:200]
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    assert len(body) == int(fields[b"content-length"])
    if request_bytes.startswith(b"POST"):
        token = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET).verify(
            body.split(b'"livekit_token":"')[1].split(b'"')[0].decode()
        )
        assert token.video is not None
        assert token.video.agent
