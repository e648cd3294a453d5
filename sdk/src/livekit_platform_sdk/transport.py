"""An httpx transport that sends over aiohttp, which the worker has loaded already (livekit-agents uses it).

httpx's own transport imports anyio's asyncio backend on the first request: about 4 MiB in the worker's main
process for one call every half token lifetime.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx
from yarl import URL


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with one lazily created aiohttp session; errors come back as httpx exceptions.

    ``verify`` means what it means to ``httpx.AsyncClient``; TLS is set up on the first https request.
    """

    def __init__(self, *, verify: ssl.SSLContext | str | bool = True) -> None:
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None

    def _ssl_for(self, url: httpx.URL) -> ssl.SSLContext | bool:
        if url.scheme != "https":
            return True  # aiohttp's default; no TLS happens
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            # httpx decodes the body itself, as it would with its own transport; trust_env keeps
            # HTTP(S)_PROXY/NO_PROXY working (httpx applies them only to its own transports)
            self._session = aiohttp.ClientSession(auto_decompress=False, trust_env=True)
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(connect=timeouts.get("connect"), sock_read=timeouts.get("read"))
        try:
            async with self._session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=await request.aread(),
                timeout=timeout,
                ssl=self._ssl_for(request.url),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(response.status, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
