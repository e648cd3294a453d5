"""A round-robin HTTP load balancer on loopback, in front of several ``lkps serve`` replicas.

It works as an ingress controller does in front of a Deployment: each request (not each connection: LiveKit
and the SDK keep connections alive) goes to the next replica in turn; a replica that refuses the connection
is skipped for that request and the next one is tried (nginx's ``proxy_next_upstream error``), so a killed
replica costs a client at most the requests that were in flight on it. Websocket upgrades are relayed to one
replica for the connection's life.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from livekit_platform_testing.server import StandInServer

log = logging.getLogger(__name__)

# Hop-by-hop and recomputed headers are never forwarded.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade"}
)


class Balancer(StandInServer):
    """Spreads requests over ``backends`` (base URLs) in turn; ``served`` counts requests per backend URL."""

    def __init__(self, backends: Sequence[str], *, port: int = 0) -> None:
        super().__init__(port=port)
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = [b.rstrip("/") for b in backends]
        self._turn = itertools.cycle(range(len(self.backends)))
        self._session: aiohttp.ClientSession | None = None
        self.served: Counter[str] = Counter()
        """Requests each backend answered (any status), keyed by backend URL."""
        self.served_paths: Counter[tuple[str, str]] = Counter()
        """Requests each backend answered, keyed by (backend URL, path)."""
        self.refused: Counter[str] = Counter()
        """Connection attempts each backend refused (the request then went to the next one)."""

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        return app

    async def on_started(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False)

    async def on_stopping(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        if request.headers.get("upgrade", "").lower() == "websocket":
            return await self._relay_websocket(request, headers)
        body = await request.read()
        start = next(self._turn)
        for offset in range(len(self.backends)):
            backend = self.backends[(start + offset) % len(self.backends)]
            try:
                async with self._session.request(
                    request.method,
                    f"{backend}{request.rel_url}",
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                ) as upstream:
                    payload = await upstream.read()
                    out = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED}
                    self.served[backend] += 1
                    self.served_paths[(backend, request.path)] += 1
                    return web.Response(status=upstream.status, body=payload, headers=out)
            except aiohttp.ClientConnectorError:
                self.refused[backend] += 1
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                # The replica took the request and died (or hung): what it did is unknown, as behind a real
                # ingress; the client sees a 502 and retries.
                log.warning("balancer: %s failed mid-request: %s", backend, type(exc).__name__)
                return web.Response(status=502, text="bad gateway: the replica failed mid-request")
        return web.Response(status=503, text="no replica accepted the connection")

    async def _relay_websocket(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        assert self._session is not None
        backend = self.backends[next(self._turn)]
        url = f"{backend.replace('http', 'ws', 1)}{request.rel_url}"
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket")}
        try:
            upstream = await self._session.ws_connect(url, headers=headers, autoping=False)
        except aiohttp.WSServerHandshakeError as exc:
            return web.Response(status=exc.status, text="the replica refused the websocket")
        except aiohttp.ClientConnectorError:
            return web.Response(status=503, text="the replica refused the connection")
        self.served[backend] += 1
        self.served_paths[(backend, request.path)] += 1
        downstream = web.WebSocketResponse(autoping=False)
        await downstream.prepare(request)

        async def pump(
            source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse[bool],
            sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse[bool],
        ) -> None:
            async for message in source:
                if message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                elif message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.PING:
                    await sink.ping(message.data)
                elif message.type == aiohttp.WSMsgType.PONG:
                    await sink.pong(message.data)
            await sink.close(code=source.close_code or aiohttp.WSCloseCode.OK)

        pumps = [
            asyncio.ensure_future(pump(downstream, upstream)),
            asyncio.ensure_future(pump(upstream, downstream)),
        ]
        _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await upstream.close()
        return downstream
