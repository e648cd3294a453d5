"""The relay's own connection to LiveKit's worker endpoint, with a token it mints with the real LiveKit key
for the same worker identity and agent name (LiveKit checks it only at the upgrade: a short lifetime)."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ..domain.tokens import TokenMinter
from .agent_tokens import AgentClaims

UPSTREAM_TOKEN_TTL = 300
# The worker's own keepalive goes through the relay (its pings are messages); this one keeps an idle
# connection through proxies and finds a dead LiveKit.
HEARTBEAT = 30.0


class UpstreamRefusedError(Exception):
    """LiveKit refused or could not be reached; ``reason`` says which (no token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def worker_endpoint(livekit_url: str) -> str:
    """``<livekit_url>/agent`` as ws(s), as livekit-agents builds it."""
    parts = urlsplit(livekit_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/agent", "", ""))


class LiveKitUpstream:
    def __init__(self, livekit_url: str, minter: TokenMinter, tls: ssl.SSLContext) -> None:
        self._endpoint = worker_endpoint(livekit_url)
        self._minter = minter
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # limit=0: each worker holds one connection for as long as it runs
            connector = aiohttp.TCPConnector(limit=0, ssl=self._tls)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def connect(
        self, claims: AgentClaims, params: dict[str, str], now: int
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        token = self._minter.agent_token(
            identity=claims.identity, name=claims.agent_name, now=now, ttl=UPSTREAM_TOKEN_TTL
        )
        try:
            return await self._client().ws_connect(
                self._endpoint,
                headers={"Authorization": f"Bearer {token}"},
                params=params,
                autoping=True,
                heartbeat=HEARTBEAT,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise UpstreamRefusedError(f"LiveKit refused the worker connection: HTTP {exc.status}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamRefusedError(f"LiveKit could not be reached ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
