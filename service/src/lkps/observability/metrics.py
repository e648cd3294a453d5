"""Every Prometheus metric the service exports (prefix ``lkps_``), on one registry per app.

Label values are always the service's own constants: route templates (an unknown path is ``unmatched``),
methods (an unknown one is ``OTHER``), status codes the service answers with, error codes and event names
it knows (an unknown event is ``other``). Nothing a caller sends becomes a label value, so a caller cannot
grow the number of series.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.events import HANDLED_EVENTS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Graph calls take tens to hundreds of milliseconds; requests a few milliseconds.
_GRAPH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The components whose database failures are counted in lkps_database_errors_total.
DATABASE_COMPONENTS = ("audit", "registry", "webhooks", "admin", "health")


class AuditState(Protocol):
    """What the metrics read from the audit writer (:class:`lkps.storage.audit_writer.AuditWriter`)."""

    written: int
    dropped: int
    set_aside: int
    failed_attempts: int

    @property
    def pending(self) -> int: ...


class Metrics:
    """The service's metrics. Counters a request increments are pre-bound where their labels are known."""

    def __init__(self, routes: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.routes = frozenset(routes)
        self.tokens_issued = Counter(
            "lkps_tokens_issued",
            "LiveKit tokens issued, by kind: agent (worker tokens) or participant (session tokens).",
            ["kind"],
            registry=registry,
        )
        self.agent_tokens = self.tokens_issued.labels("agent")
        self.participant_tokens = self.tokens_issued.labels("participant")
        self.registrations = Counter(
            "lkps_registrations",
            "Agent registrations, by outcome: registered, or the error code of the refusal.",
            ["outcome"],
            registry=registry,
        )
        self.registered = self.registrations.labels("registered")
        self.refusals = Counter(
            "lkps_refusals",
            "Requests refused with an API error (4xx or 5xx), by route and reason (the error's reason code).",
            ["route", "reason"],
            registry=registry,
        )
        self.revocations = Counter(
            "lkps_revocations",
            "Agent registrations revoked (a registration refused for a missing app role).",
            registry=registry,
        )
        self.session_starts = Counter(
            "lkps_session_starts",
            "Session starts, by outcome: started, or the error code of the refusal.",
            ["outcome"],
            registry=registry,
        )
        self.sessions_started = self.session_starts.labels("started")
        self.graph_calls = Counter(
            "lkps_graph_calls",
            "Microsoft Graph lookups of an agent's app registration, by outcome: ok, not_found or error.",
            ["outcome"],
            registry=registry,
        )
        self.graph_cache_hits = Counter(
            "lkps_graph_cache_hits",
            "Client authorization checks answered from the Graph cache, without a call.",
            registry=registry,
        )
        self.graph_duration = Histogram(
            "lkps_graph_call_duration_seconds",
            "Duration of Microsoft Graph lookups (token and HTTP call).",
            buckets=_GRAPH_BUCKETS,
            registry=registry,
        )
        self.webhook_events = Counter(
            "lkps_webhook_events",
            "LiveKit webhook deliveries, by event (other: one the service does not handle; unknown: not"
            " verified) and verdict: processed, duplicate, ignored, refused or unavailable.",
            ["event", "verdict"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "lkps_http_request_duration_seconds",
            "HTTP request duration, by route template (unmatched: any other path), method and status.",
            ["route", "method", "status"],
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self._database_errors = dict.fromkeys(DATABASE_COMPONENTS, 0)
        self._durations: dict[tuple[str, str, int], Histogram] = {}
        self._audit: AuditState | None = None
        self._waiting_since: float | None = None
        self._last_written = 0
        registry.register(_StateCollector(self))

    # -- what the request path records

    def route_of(self, path: str) -> str:
        return path if path in self.routes else UNMATCHED

    def refused(self, path: str, reason: str) -> None:
        self.refusals.labels(self.route_of(path), reason).inc()

    def webhook(self, event: str, verdict: str) -> None:
        known = event in HANDLED_EVENTS or event == "unknown"
        self.webhook_events.labels(event if known else "other", verdict).inc()

    def database_error(self, component: str) -> None:
        self._database_errors[component] += 1

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.request_duration.labels(route, method, str(status))
        child.observe(seconds)

    # -- what is read at scrape time

    def watch_audit(self, audit: AuditState) -> None:
        """Export the audit writer's queue depth, rows written and dropped, and lag."""
        self._audit = audit
        self._last_written = audit.written

    def audit_lag(self, now: float) -> float:
        """Seconds the audit writer has had records waiting without writing any (0 when none wait): how far
        behind the audit table is. Read at scrape time, so its resolution is the scrape interval."""
        audit = self._audit
        if audit is None or audit.pending == 0:
            self._waiting_since = None
            if audit is not None:
                self._last_written = audit.written
            return 0.0
        if self._waiting_since is None or audit.written != self._last_written:
            self._waiting_since, self._last_written = now, audit.written
        return now - self._waiting_since

    def state(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "lkps_database_errors",
            "Database failures, by component: audit (a write attempt failed), registry (an agent lookup"
            " failed), webhooks (an event could not be stored), admin (an admin view could not be read),"
            " health (a health check found the database down).",
            labels=["component"],
        )
        audit = self._audit
        for component, count in self._database_errors.items():
            extra = audit.failed_attempts if component == "audit" and audit is not None else 0
            errors.add_metric([component], count + extra)
        yield errors
        if audit is None:
            return
        yield GaugeMetricFamily(
            "lkps_audit_queue_depth", "Audit records waiting to be written.", value=audit.pending
        )
        yield CounterMetricFamily("lkps_audit_written", "Audit rows written.", value=audit.written)
        dropped = CounterMetricFamily(
            "lkps_audit_dropped",
            "Audit records not stored, by reason: queue_full (the queue was full), unstorable (the database"
            " refused the record's values: set aside, logged without them).",
            labels=["reason"],
        )
        dropped.add_metric(["queue_full"], audit.dropped - audit.set_aside)
        dropped.add_metric(["unstorable"], audit.set_aside)
        yield dropped
        yield GaugeMetricFamily(
            "lkps_audit_lag_seconds",
            "How long audit records have waited without the writer writing any (0 when none wait).",
            value=self.audit_lag(time.monotonic()),
        )


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.state()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # values only exist at scrape time


class RequestMetrics:
    """A duration observation per HTTP request, labelled by route template, method and status. Outside the
    routes speedup's dispatch (:class:`lkps.speedups.hot_routes.HotRoutes`), so both dispatch paths are timed
    alike."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts is answered 500 by Starlette

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            method = scope["method"]
            self._metrics.observe_request(
                self._metrics.route_of(scope["path"]),
                method if method in _METHODS else "OTHER",
                status,
                time.perf_counter() - started,
            )
