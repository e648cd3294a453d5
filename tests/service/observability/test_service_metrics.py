"""Prometheus metrics at ``GET /metrics``: what each API outcome counts, request durations by route template
only (a caller cannot add series), the switch and the separate port, on both dispatch paths."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx
from livekit.protocol.models import Room
from livekit.protocol.webhook import WebhookEvent
from prometheus_client.parser import text_string_to_metric_families

from livekit_platform_testing.tenant import Tenant
from lkps.observability.metrics import Metrics, RequestMetrics
from lkps.settings import Settings
from tests.support.service import (
    Parties,
    Running,
    client_headers,
    free_port,
    gateway_headers,
    new_agent_id,
    running_app,
    served_app,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(app: Running) -> Samples:
    response = await app.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def webhook_event(kind: str) -> WebhookEvent:
    room = f"room-{uuid.uuid4().hex[:8]}"
    return WebhookEvent(
        event=kind,
        id=f"EV_{uuid.uuid4().hex[:12]}",
        created_at=int(time.time()),
        room=Room(sid="RM_1", name=room),
    )


async def test_each_api_outcome_is_counted_by_kind_outcome_and_reason(settings: Settings) -> None:
    agent = new_agent_id()
    async with running_app(settings) as app:
        assert (await app.register(agent, enforce=False)).status_code == 200
        assert (await app.start_session(agent)).status_code == 200
        assert (await app.start_session(new_agent_id())).status_code == 404
        bad = await app.client.post("/api/agent/register", json={}, headers=gateway_headers(client_id="nope"))
        assert bad.status_code == 400
        event = webhook_event("room_started")
        assert (await app.webhook(event)).status_code == 200
        assert (await app.webhook(event)).status_code == 200  # the same id again: a duplicate
        assert (await app.webhook(webhook_event("track_published"))).status_code == 200
        assert (await app.webhook(webhook_event("room_started"), api_secret="x" * 40)).status_code == 401
        await app.services.audit.flush()
        samples = await scrape(app)

    assert value(samples, "lkps_tokens_issued_total", kind="agent") == 1
    assert value(samples, "lkps_tokens_issued_total", kind="participant") == 1
    assert value(samples, "lkps_registrations_total", outcome="registered") == 1
    assert value(samples, "lkps_registrations_total", outcome="bad_request") == 1
    assert value(samples, "lkps_session_starts_total", outcome="started") == 1
    assert value(samples, "lkps_session_starts_total", outcome="agent_not_registered") == 1
    assert (
        value(samples, "lkps_refusals_total", route="/api/session/start", reason="agent_not_registered") == 1
    )
    assert value(samples, "lkps_refusals_total", route="/api/agent/register", reason="bad_request") == 1
    assert value(samples, "lkps_refusals_total", route="/livekit/webhook", reason="webhook_signature") == 1
    assert value(samples, "lkps_webhook_events_total", event="room_started", verdict="processed") == 1
    assert value(samples, "lkps_webhook_events_total", event="room_started", verdict="duplicate") == 1
    assert value(samples, "lkps_webhook_events_total", event="other", verdict="ignored") == 1
    assert value(samples, "lkps_webhook_events_total", event="unknown", verdict="refused") == 1
    # register and session start each wrote their audit row
    assert value(samples, "lkps_audit_written_total") == 2
    assert value(samples, "lkps_audit_queue_depth") == 0
    assert value(samples, "lkps_audit_lag_seconds") == 0
    assert value(samples, "lkps_database_errors_total", component="audit") == 0
    # each request timed once, by its answer's status, on both dispatch paths (HotRoutes times its own)
    for route, status, times in [
        ("/api/agent/register", "200", 1),
        ("/api/agent/register", "400", 1),
        ("/api/session/start", "200", 1),
        ("/api/session/start", "404", 1),
        ("/livekit/webhook", "200", 3),
        ("/livekit/webhook", "401", 1),
    ]:
        count = {"route": route, "method": "POST", "status": status}
        assert value(samples, "lkps_http_request_duration_seconds_count", **count) == times, count


async def test_request_durations_are_labelled_by_route_template_so_callers_cannot_add_series(
    settings: Settings,
) -> None:
    async with running_app(settings) as app:
        await app.client.get("/api/health")
        for n in range(200):
            await app.client.get(f"/api/agent/register/{n}?x={n}")
            await app.client.request(f"X{n}", f"/scan/{uuid.uuid4()}")
            await app.client.post(f"/livekit/webhook{n}", content=b"{}")
        samples = await scrape(app)

    # 600 distinct paths and 200 distinct methods later: only the service's own label values
    series = {
        (labels["route"], labels["method"], labels["status"])
        for name, pairs in samples
        if name == "lkps_http_request_duration_seconds_count"
        for labels in [dict(pairs)]
    }
    assert {(route, method) for route, method, _ in series} == {
        ("/api/health", "GET"),
        ("unmatched", "GET"),
        ("unmatched", "POST"),
        ("unmatched", "OTHER"),
    }
    count = {"route": "unmatched", "method": "OTHER", "status": "404"}
    assert value(samples, "lkps_http_request_duration_seconds_count", **count) == 200


async def test_graph_calls_cache_hits_and_latency_are_counted(
    tenant: Tenant, parties: Parties, entra_settings: Settings, graph_calls: None
) -> None:
    agent_headers = await tenant.bearer(parties.agent)
    client = await tenant.bearer(parties.client)
    body = {"agent_entra_app_id": parties.agent.app_id}
    async with running_app(entra_settings, authorizer=None) as app:
        assert (
            await app.client.post("/api/agent/register", json={}, headers=agent_headers)
        ).status_code == 200
        for _ in range(3):
            assert (await app.client.post("/api/session/start", json=body, headers=client)).status_code == 200
        expired = {"Authorization": "Bearer not-a-jwt"}
        assert (await app.client.post("/api/session/start", json=body, headers=expired)).status_code == 401
        samples = await scrape(app)

    assert value(samples, "lkps_graph_calls_total", outcome="ok") == 1
    assert value(samples, "lkps_graph_cache_hits_total") == 2
    assert value(samples, "lkps_graph_call_duration_seconds_count") == 1
    assert value(samples, "lkps_refusals_total", route="/api/session/start", reason="not_a_jwt") == 1
    assert value(samples, "lkps_session_starts_total", outcome="unauthorized") == 1


async def test_a_health_check_that_finds_the_database_down_counts_a_database_error(
    settings: Settings,
) -> None:
    down = settings.model_copy(update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"})
    async with running_app(down) as app:
        health = await app.client.get("/api/health")
        samples = await scrape(app)
    assert health.status_code == 503
    assert health.json()["reason"] == "database"
    assert value(samples, "lkps_database_errors_total", component="health") == 1
    assert value(samples, "lkps_database_errors_total", component="audit") == 0


async def test_metrics_off_means_no_endpoint_and_no_timing(settings: Settings) -> None:
    off = settings.model_copy(update={"metrics_enabled": False})
    async with running_app(off) as app:
        assert (await app.client.get("/metrics")).status_code == 404
        assert RequestMetrics not in [m.cls for m in app.app.user_middleware]
        assert (await app.register(new_agent_id())).status_code == 200


async def test_a_separate_metrics_port_serves_metrics_and_the_service_port_does_not(
    settings: Settings,
) -> None:
    port = free_port()
    separate = settings.model_copy(update={"metrics_port": port})
    async with served_app(separate) as served, httpx.AsyncClient() as client:
        assert (
            await client.post(f"{served.url}/api/agent/register", headers=client_headers())
        ).status_code == 200
        assert (await client.get(f"{served.url}/metrics")).status_code == 404
        scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert scraped.status_code == 200
    assert value(parse(scraped.text), "lkps_tokens_issued_total", kind="agent") == 1


class Audit:
    def __init__(self, pending: int = 0, written: int = 0) -> None:
        self.pending, self.written, self.dropped, self.failed_attempts = pending, written, 0, 0


def test_audit_lag_is_how_long_records_wait_without_a_write() -> None:
    metrics, audit = Metrics(), Audit()
    metrics.watch_audit(audit)
    assert metrics.audit_lag(100.0) == 0
    audit.pending = 5
    assert metrics.audit_lag(101.0) == 0  # records start waiting
    assert metrics.audit_lag(131.0) == 30  # and nothing was written since
    audit.written, audit.pending = 3, 2
    assert metrics.audit_lag(132.0) == 0  # progress: the wait starts again
    assert metrics.audit_lag(140.0) == 8
    audit.pending = 0
    assert metrics.audit_lag(141.0) == 0


def test_every_label_value_is_one_of_the_services_constants() -> None:
    metrics = Metrics(routes=["/api/health"])
    metrics.refused("/../../etc/passwd", "bad_request")
    metrics.webhook("made_up_event_name", "ignored")
    labels: Mapping[str, set[str]] = {"route": set(), "event": set()}
    for _, pairs in parse(_exposition(metrics)):
        for key, val in pairs:
            if key in labels:
                labels[key].add(val)
    assert labels == {"route": {"unmatched"}, "event": {"other"}}


def _exposition(metrics: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


async def test_the_operating_guide_lists_exactly_the_metrics_the_service_exports(settings: Settings) -> None:
    async with running_app(settings) as app:
        exported = {
            family.name for family in text_string_to_metric_families((await app.client.get("/metrics")).text)
        }
    page = (Path(__file__).parents[3] / "docs" / "operating-the-service.md").read_text(encoding="utf-8")
    exported = {name for name in exported if not name.endswith("_created")}  # the counters' start times
    documented = {name.removesuffix("_total") for name in re.findall(r"^\| `(lkps_\w+)`", page, re.MULTILINE)}
    assert documented == exported
