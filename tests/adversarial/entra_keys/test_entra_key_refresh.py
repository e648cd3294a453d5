"""Entra's signing keys when Entra is slow or unreachable: requests go on with the keys held (refreshed in
the background) within their grace, a request waits for at most one refresh attempt, shared, and keys past
their grace are not used (issue 24, item 7).

The Entra stand-in is taken down for real; in its place a listener accepts connections and never answers
(Entra hanging), or nothing listens (Entra unreachable). Time is the identity's clock seam, so "a day later"
takes no time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.datastructures import Headers

from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.tenant import App, Tenant
from lkps.app import tls_context
from lkps.auth.entra import EntraIdentity
from lkps.errors import ApiError
from lkps.settings import Settings
from tests.support.edge import until
from tests.support.service import API_SECRET

# A syntactically valid JWT naming a key no tenant publishes; it never gets as far as a signature check.
UNKNOWN_KID = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vLXN1Y2gta2V5In0.eyJzdWIiOiJ4In0.c2ln"


@dataclass
class Hanging:
    """A listener that accepts connections and never answers: Entra hanging."""

    accepted: int = 0
    open: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up
        self.open -= 1


@contextlib.asynccontextmanager
async def hanging_on(port: int) -> AsyncIterator[Hanging]:
    hanging = Hanging()
    server = await asyncio.start_server(hanging.handle, "127.0.0.1", port)
    try:
        yield hanging
    finally:
        for writer in hanging.writers:
            writer.close()
        server.close()


@dataclass
class Keys:
    entra: EntraStandIn
    tenant: Tenant
    agent: App
    settings: Settings

    @property
    def port(self) -> int:
        port = urlsplit(self.entra.authority_host).port
        assert port is not None
        return port


@pytest.fixture
def keys() -> Iterator[Keys]:
    """A stand-in of its own (the test takes it down), with the platform's app and an agent in it."""
    with EntraStandIn() as entra:
        tenant = Tenant(entra)
        agent = tenant.add_agent("agent")
        settings = Settings.from_env(
            {
                "LIVEKIT_URL": "ws://127.0.0.1:7880",
                "LIVEKIT_API_KEY": "APIlkps",
                "LIVEKIT_API_SECRET": API_SECRET,
                "LKPS_IDENTITY_MODE": "entra",
                **tenant.service_env(),
            }
        )
        yield Keys(entra, tenant, agent, settings)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def identity(settings: Settings, clock: Clock, timeout: float) -> AsyncIterator[EntraIdentity]:
    async with httpx.AsyncClient(verify=tls_context(settings), timeout=timeout) as http:
        entra = EntraIdentity(settings, http=http, clock=clock)
        try:
            yield entra
        finally:
            await entra.aclose()


def bearer(token: str) -> Headers:
    return Headers({"authorization": f"Bearer {token}"})


async def test_stale_keys_serve_requests_while_entra_hangs(keys: Keys) -> None:
    token = await asyncio.to_thread(keys.tenant.token, keys.agent)
    clock = Clock()
    async with identity(keys.settings, clock, timeout=10.0) as entra:
        assert (await entra.resolve(bearer(token), "register")).client_id == keys.agent.app_id
        await asyncio.to_thread(keys.entra.stop)
        async with hanging_on(keys.port) as hanging:
            clock.now += EntraIdentity.REFRESH_AFTER + 60  # a day later: the keys are due for a refresh

            callers = await asyncio.gather(*(entra.resolve(bearer(token), "register") for _ in range(20)))
            await until(lambda: hanging.accepted >= 1, what="the refresh reaching Entra")

            # every request was answered while the one refresh attempt still waits on Entra
            assert hanging.open == 1
            assert hanging.accepted == 1
    assert {caller.client_id for caller in callers} == {keys.agent.app_id}


async def test_an_unknown_key_waits_for_one_shared_attempt_while_entra_hangs(keys: Keys) -> None:
    token = await asyncio.to_thread(keys.tenant.token, keys.agent)
    clock = Clock()
    async with identity(keys.settings, clock, timeout=1.0) as entra:
        await entra.resolve(bearer(token), "register")
        await asyncio.to_thread(keys.entra.stop)
        async with hanging_on(keys.port) as hanging:
            clock.now += EntraIdentity.MIN_REFRESH_INTERVAL

            outcomes = await asyncio.gather(
                *(entra.resolve(bearer(UNKNOWN_KID), "register") for _ in range(20)), return_exceptions=True
            )
            known = await entra.resolve(bearer(token), "register")

    assert hanging.accepted == 1
    assert all(isinstance(o, ApiError) and o.status == 401 for o in outcomes), outcomes
    assert known.client_id == keys.agent.app_id


async def test_keys_past_their_grace_are_not_used_when_entra_is_unreachable(keys: Keys) -> None:
    token = await asyncio.to_thread(keys.tenant.token, keys.agent)
    clock = Clock()
    async with identity(keys.settings, clock, timeout=5.0) as entra:
        await entra.resolve(bearer(token), "register")
        await asyncio.to_thread(keys.entra.stop)  # nothing listens: connections are refused
        clock.now += EntraIdentity.KEY_GRACE + 60

        with pytest.raises(ApiError) as refused:
            await entra.resolve(bearer(token), "register")
        with pytest.raises(ApiError) as again:
            await entra.resolve(bearer(token), "register")  # within the refresh interval: no new attempt

    assert refused.value.status == again.value.status == 503
    assert refused.value.error == "identity_provider_unavailable"
