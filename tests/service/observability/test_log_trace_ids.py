"""Log lines written while a request is served carry its trace id (with tracing on), on both dispatch paths
and with the batching log handler (speedup ``logs``) as with the plain one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from livekit_platform_testing.otlp import OtlpStandIn
from lkps.app import setup_logging
from lkps.settings import Settings
from tests.support.service import gateway_headers, new_agent_id, running_app

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.flush()
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_a_requests_log_lines_carry_its_trace_id(
    settings: Settings,
    otlp_collector: OtlpStandIn,
    monkeypatch: pytest.MonkeyPatch,
    restored_logging: None,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_collector.url)
    traced = settings.model_copy(update={"otlp_endpoint": otlp_collector.url, "log_format": "json"})
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    setup_logging(traced)
    agent = new_agent_id()
    headers = gateway_headers(client_id=agent)
    headers["traceparent"] = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    async with running_app(traced) as app:
        assert (await app.client.post("/api/agent/register", json={}, headers=headers)).status_code == 200
        refused = gateway_headers(client_id="not-a-guid")
        refused["traceparent"] = f"00-{'1' * 32}-00f067aa0ba902b7-01"
        assert (await app.client.post("/api/agent/register", json={}, headers=refused)).status_code == 400
    for handler in logging.getLogger().handlers:
        handler.flush()

    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    registered = next(line for line in lines if line["msg"] == "agent registered")
    assert registered["trace_id"] == TRACE_ID
    assert len(registered["span_id"]) == 16
    refusal = next(line for line in lines if line["msg"] == "request refused")
    assert refusal["trace_id"] == "1" * 32
    started = next(line for line in lines if line["msg"] == "lkps started")
    assert "trace_id" not in started  # not inside a request
