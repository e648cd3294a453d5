"""A request head past ``LKPS_MAX_HEADER_BYTES`` is answered 431 before the rest is read, on both dispatch
paths, and a huge bearer never gets into memory (issue 24, item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import json

from lkps.settings import Settings
from tests.support.edge import (
    gateway_headers,
    head,
    peak_during,
    raw_request,
    retained_after,
    served,
    status_of,
    until,
)

LIMIT = 8 * 1024


def limited(env: dict[str, str]) -> Settings:
    return Settings.from_env({**env, "LKPS_MAX_HEADER_BYTES": str(LIMIT)})


async def test_a_head_past_the_limit_is_431(env: dict[str, str]) -> None:
    async with served(limited(env)) as server:
        one_big = await raw_request(
            server.port, head("POST", "/api/agent/register", gateway_headers(**{"x-pad": "a" * LIMIT}), b"{}")
        )
        many = {f"x-pad-{i}": "b" * 100 for i in range(LIMIT // 100)}
        many_small = await raw_request(
            server.port, head("POST", "/api/agent/register", gateway_headers(**many), b"{}")
        )
        long_target = await raw_request(server.port, head("GET", "/api/health?" + "c" * LIMIT, {}))
        within = await raw_request(
            server.port,
            head("GET", "/api/health", {"x-pad": "d" * (LIMIT // 2), "connection": "close"}),
        )

    for answer in (one_big, many_small, long_target):
        assert status_of(answer) == 431, answer[:300]
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["error"] == "request_header_fields_too_large"
        assert "LKPS_MAX_HEADER_BYTES" in body["detail"]
    assert status_of(within) in (200, 503)


async def test_a_21_mib_bearer_is_refused_without_being_read_into_memory(env: dict[str, str]) -> None:
    """The head is refused once it passes the limit: the server never holds the bearer (tracemalloc sees the
    whole process: the server runs in this one)."""
    settings = Settings.from_env({**env, "LKPS_IDENTITY_MODE": "gateway"})
    bearer = b"Bearer " + b"A" * (21 * 1024 * 1024)
    start = b"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\nauthorization: "
    answers: list[bytes] = []

    async def attack() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        with contextlib.suppress(ConnectionError):
            writer.write(start)
            for offset in range(0, len(bearer), 64 * 1024):
                writer.write(bearer[offset : offset + 64 * 1024])
                await writer.drain()
        answer = b""
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                answer += chunk
        answers.append(answer)
        writer.close()

    async with served(settings) as server:
        tracemalloc_growth = await peak_during(attack)

    assert status_of(answers[0]) == 431, answers[0][:300]
    # the bearer is 21 MiB (allocated before measuring); the server held under 1 MiB of it at any time
    assert tracemalloc_growth < 1024 * 1024


async def test_a_burst_of_oversized_heads_leaves_no_memory_behind(env: dict[str, str]) -> None:
    async with served(limited(env)) as server:
        oversized = head(
            "POST", "/api/agent/register", gateway_headers(**{"x-pad": "e" * (LIMIT * 4)}), b"{}"
        )

        async def burst() -> None:
            answers = await asyncio.gather(*(raw_request(server.port, oversized) for _ in range(200)))
            assert all(status_of(a) == 431 for a in answers)
            await until(lambda: server.connections == 0, what="every refused connection closed")

        await burst()  # warm up: first-use allocations (imports, caches of the event loop) happen here
        retained = await retained_after(burst)

    assert retained < 256 * 1024
