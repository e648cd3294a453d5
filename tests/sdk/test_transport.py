"""The aiohttp-backed httpx transport: requests and answers arrive intact, failures are httpx errors."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket

import httpx
import pytest
from aiohttp import web

from livekit_platform_sdk.transport import AiohttpTransport
from livekit_platform_testing.server import StandInServer


class _Echo(StandInServer):
    released: asyncio.Event

    async def on_stopping(self) -> None:
        self.released.set()  # lets the slow answer finish instead of being destroyed mid-request

    def build_app(self) -> web.Application:
        self.released = asyncio.Event()

        async def echo(request: web.Request) -> web.Response:
            body = {
                "method": request.method,
                "auth": request.headers.get("Authorization"),
                **await request.json(),
            }
            return web.Response(
                body=gzip.compress(json.dumps(body).encode()),
                headers={"Content-Encoding": "gzip", "Retry-After": "7"},
                content_type="application/json",
            )

        async def slow(request: web.Request) -> web.Response:
            await asyncio.wait_for(self.released.wait(), timeout=10)
            return web.Response(text="late")

        app = web.Application()
        app.router.add_post("/echo", echo)
        app.router.add_post("/slow", slow)
        return app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_request_and_compressed_answer_pass_through_intact() -> None:
    with _Echo() as server:
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            response = await client.post(
                f"{server.url}/echo", json={"n": 3}, headers={"Authorization": "Bearer x"}
            )
    assert response.status_code == 200
    assert response.json() == {"method": "POST", "auth": "Bearer x", "n": 3}
    assert response.headers["Retry-After"] == "7"


async def test_slow_answer_raises_httpx_timeout() -> None:
    with _Echo() as server:
        async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.3) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.post(f"{server.url}/slow", json={})


async def test_refused_connection_raises_httpx_connect_error() -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{_closed_port()}/echo", json={})


class _ForwardProxy(StandInServer):
    """Answers every request itself, recording the absolute URL it was sent (as a forward proxy sees it)."""

    seen: list[str]

    def build_app(self) -> web.Application:
        self.seen = []

        async def record(request: web.Request) -> web.Response:
            self.seen.append(str(request.url))
            return web.json_response({"via": "proxy"})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        return app


async def test_proxy_environment_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with _ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            # the platform's name is never resolved here: only the proxy is contacted
            response = await client.post("http://platform.example.test/api/agent/register", json={})
    assert response.json() == {"via": "proxy"}
    assert proxy.seen == ["http://platform.example.test/api/agent/register"]
