"""What the HTTP protocol refuses before any app sees it is a refusal like the API's: counted in
``lkps_refusals_total`` by reason and logged through the rate-limited refusal log, never with what the client
sent (issue 24, item 11). Before, a flood of requests that are not HTTP wrote uvicorn's
``Invalid HTTP request received.`` once each, and 431s, bad targets and timeouts were neither logged nor
counted. Also here: a body trickled after its head is closed after ``LKPS_BODY_TIMEOUT`` (slow POST)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lkps.observability.refusals import BURST
from lkps.settings import Settings
from tests.support.edge import OPEN_AGENT, gateway_headers, head, raw_request, served, status_of, until

REFUSALS_LOGGER = "lkps.observability.refusals"
SECRET_LOOKING = "attacker-bytes-" + "s" * 24


def refusals(exposition: str, route: str = "unmatched") -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "lkps_refusals"
        for sample in family.samples
        if sample.name == "lkps_refusals_total" and sample.labels["route"] == route
    }


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        return (await client.get("/metrics")).text


def lines(caplog: pytest.LogCaptureFixture, reason: str) -> list[logging.LogRecord]:
    """The ``request refused`` lines of ``reason``."""
    return [
        r
        for r in caplog.records
        if r.name == REFUSALS_LOGGER and r.msg == "request refused" and getattr(r, "reason", None) == reason
    ]


async def test_a_flood_of_requests_that_are_not_http_is_counted_and_logged_rate_limited(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    flood = 60
    async with served(Settings.from_env(env)) as server:
        answers = await asyncio.gather(
            *(
                raw_request(
                    server.port, f"FROB /api/health HTTP/1.1\r\nx-a: {SECRET_LOOKING}\r\n\r\n".encode()
                )
                for _ in range(flood)
            )
        )
        exposition = await scrape(server.url)

    for answer in answers:
        assert status_of(answer) == 400, answer[:200]
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["error"] == "bad_request"
        assert "not valid HTTP/1.1" in body["detail"]
    assert refusals(exposition)["invalid_http"] == flood
    logged = lines(caplog, "invalid_http")
    assert len(logged) == BURST  # the burst; the rest suppressed, reported by one line at exit
    suppressed = [
        r for r in caplog.records if r.getMessage() == f"{flood - BURST} similar refusals suppressed"
    ]
    assert len(suppressed) == 1
    assert not [r for r in caplog.records if "Invalid HTTP request received" in r.getMessage()]
    assert logged[0].levelno == logging.INFO
    assert logged[0].route == "unmatched"  # type: ignore[attr-defined]
    assert logged[0].client_address == "127.0.0.1"  # type: ignore[attr-defined]
    assert SECRET_LOOKING not in caplog.text
    assert "FROB" not in caplog.text


async def test_an_oversized_head_and_a_bad_target_are_counted_by_reason(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings.from_env({**env, "LKPS_MAX_HEADER_BYTES": "8192"})
    async with served(settings) as server:
        too_large = await raw_request(
            server.port, head("GET", "/api/health", {"x-pad": SECRET_LOOKING + "a" * 9000})
        )
        encoded = await raw_request(server.port, head("GET", "/api%2Fhealth", {}))
        exposition = await scrape(server.url)

    assert status_of(too_large) == 431
    assert status_of(encoded) == 400
    counted = refusals(exposition)
    assert counted["request_header_fields_too_large"] == 1
    assert counted["bad_request_target"] == 1
    (line,) = lines(caplog, "bad_request_target")
    assert "percent-encoded" in line.detail  # type: ignore[attr-defined]
    assert lines(caplog, "request_header_fields_too_large")
    assert SECRET_LOOKING not in caplog.text


async def test_a_head_that_never_completes_is_counted_when_it_is_closed(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings.from_env({**env, "LKPS_HEADER_TIMEOUT": "0.3"})
    async with served(settings) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /api/agent/register HTTP/1.1\r\nhost: lkps\r\nx-half: ")
        rest = await asyncio.wait_for(reader.read(), 10)  # a bound: held, it would never end
        writer.close()
        exposition = await scrape(server.url)

    assert rest == b""
    assert refusals(exposition)["header_timeout"] == 1
    (line,) = lines(caplog, "header_timeout")
    assert "LKPS_HEADER_TIMEOUT" in line.detail  # type: ignore[attr-defined]


def body_head(length: int) -> bytes:
    """A register request's head, for a body of ``length`` bytes sent separately."""
    lines = ["POST /api/agent/register HTTP/1.1", "host: lkps", "content-type: application/json"]
    lines += [f"content-length: {length}"] + [
        f"{k}: {v}" for k, v in gateway_headers(str(uuid.uuid4())).items()
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Trickle:
    """A request whose head is complete and whose body comes a byte every 100 ms, for ever."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.closed_by_server = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(body_head(60000))
        writer.write(b'{"a": "')
        try:
            while not reader.at_eof():
                writer.write(b"a")
                await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(reader.read(4096), 0.1)
        except ConnectionError:
            pass
        finally:
            writer.close()
        self.closed_by_server.set()


async def test_a_body_trickled_after_its_head_is_closed_and_counted_while_real_requests_are_answered(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings.from_env({**env, "LKPS_BODY_TIMEOUT": "1"})
    async with served(settings) as server:
        trickles = [Trickle(server.port) for _ in range(20)]
        tasks = [asyncio.create_task(trickle.run()) for trickle in trickles]
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                answered = await client.post(
                    "/api/agent/register", json=OPEN_AGENT, headers=gateway_headers(str(uuid.uuid4()))
                )
            # a bound: without the body timeout the trickles would be held for ever
            await until(lambda: all(t.closed_by_server.is_set() for t in trickles), what="trickles closed")
        finally:
            for task in tasks:
                task.cancel()
        exposition = await scrape(server.url)

    assert answered.status_code == 200, answered.text
    assert refusals(exposition, "/api/agent/register") == {"body_timeout": 20}
    line = lines(caplog, "body_timeout")[0]
    assert line.route == "/api/agent/register"  # type: ignore[attr-defined]
    assert line.status == 408  # type: ignore[attr-defined]


async def test_a_body_that_arrives_in_pieces_within_the_timeout_is_served(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "LKPS_BODY_TIMEOUT": "2"})
    body = json.dumps(OPEN_AGENT).encode()
    async with served(settings) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(body_head(len(body)))
        for piece in (body[:5], body[5:9], body[9:]):
            await asyncio.sleep(0.3)
            writer.write(piece)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        # the connection stays usable (no timer left armed): a second request on it, after the timeout
        await asyncio.sleep(2.5)
        writer.write(head("GET", "/api/health", {"connection": "close"}))
        rest = await asyncio.wait_for(reader.read(), 10)  # the first answer's body, then the second answer
        writer.close()

    assert status_of(answer) == 200, answer
    assert rest.rsplit(b"HTTP/1.1 ", 1)[1][:3] in (b"200", b"503"), rest[-300:]


async def test_a_connection_past_the_cap_is_counted(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "LKPS_MAX_CONNECTIONS": "16", "LKPS_IDLE_TIMEOUT": "600"})
    async with served(settings) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(16)]
        await until(lambda: server.connections == 16, what="16 connections held")
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(extra_reader.read(), 10) == b""
        extra_writer.close()
        for _, writer in held:
            writer.close()
        await until(lambda: server.connections == 0, what="the held connections closed")
        exposition = await scrape(server.url)

    assert refusals(exposition)["connection_limit"] == 1
