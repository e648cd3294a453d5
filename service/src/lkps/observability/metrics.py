"""Every Prometheus metric the service exports (prefix ``lkps_``), on one registry per app.

Label values are always the service's own constants: route templates (an unknown path is ``unmatched``),
methods (an unknown one is ``OTHER``), status codes the service answers with, error codes and event names
it knows (an unknown event is ``other``). Nothing a caller sends becomes a label value, so a caller cannot
grow the number of series.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from time import perf_counter
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
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


class Cell:
    """One series' count. Incremented on the event loop's thread; read at scrape time (a separate metrics
    port scrapes from another thread: a read may miss an increment in flight, as any scrape may)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class CounterFamily(Cell):
    """A counter family. Unlabelled, it counts itself (``inc``); labelled, one :class:`Cell` per label values
    (``labels(...)``), created on first use. A plain int per series: prometheus_client's counters take a lock
    and check their state on every increment, which cost more than the rest of a request's bookkeeping, and
    nothing here is incremented from more than one thread."""

    __slots__ = ("_cells", "documentation", "labelnames", "name")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__()
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._cells: dict[tuple[str, ...], Cell] = {}

    def inc(self, amount: int = 1) -> None:
        # A labelled family's own count would never be exported: refused, as prometheus_client refuses it.
        if self.labelnames:
            raise ValueError(
                f"{self.name}: a labelled counter counts through labels({', '.join(self.labelnames)})"
            )
        self.value += amount

    def labels(self, *values: str) -> Cell:
        cell = self._cells.get(values)
        if cell is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels {self.labelnames}, got {values!r}")
            cell = self._cells[values] = Cell()
        return cell

    def collect(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames:
            family.add_metric([], self.value)
        for values, cell in self._cells.items():
            family.add_metric(list(values), cell.value)
        return family


class Durations:
    """One histogram series: a count per bucket (not cumulative: the bucket a value falls in, by
    ``bisect_left``, so a value equal to a bound counts in that bound's ``le``) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf only)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        buckets, total = [], 0
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            buckets.append((bound, float(total)))
        return buckets


class HistogramFamily(Durations):
    """A histogram family: unlabelled, it observes itself; labelled, a :class:`Durations` per label values."""

    __slots__ = ("_series", "documentation", "labelnames", "name")

    def __init__(
        self, name: str, documentation: str, bounds: tuple[float, ...], labelnames: Sequence[str] = ()
    ) -> None:
        super().__init__(bounds)
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._series: dict[tuple[str, ...], Durations] = {}

    def observe(self, seconds: float) -> None:
        # A labelled family's own series would never be exported: refused, as prometheus_client refuses it.
        if self.labelnames:
            raise ValueError(
                f"{self.name}: a labelled histogram observes through labels({', '.join(self.labelnames)})"
            )
        Durations.observe(self, seconds)

    def labels(self, *values: str) -> Durations:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: labels {self.labelnames}, got {values!r}")
            series = self._series[values] = Durations(self.bounds)
        return series

    def collect(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames:
            family.add_metric([], self.cumulative(), self.sum)
        for values, series in list(self._series.items()):
            family.add_metric(list(values), series.cumulative(), series.sum)
        return family


class Metrics:
    """The service's metrics. Counters a request increments are pre-bound where their labels are known."""

    def __init__(self, routes: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.routes = frozenset(routes)
        self.tokens_issued = CounterFamily(
            "lkps_tokens_issued",
            "LiveKit tokens issued, by kind: agent (worker tokens) or participant (session tokens).",
            ["kind"],
        )
        self.agent_tokens = self.tokens_issued.labels("agent")
        self.participant_tokens = self.tokens_issued.labels("participant")
        self.registrations = CounterFamily(
            "lkps_registrations",
            "Agent registrations, by outcome: registered, or the error code of the refusal.",
            ["outcome"],
        )
        self.registered = self.registrations.labels("registered")
        self.refusals = CounterFamily(
            "lkps_refusals",
            "Requests refused with an API error (4xx or 5xx) and worker connections the relay refused (route"
            " /agent), by route and reason (the reason code).",
            ["route", "reason"],
        )
        self.revocations = CounterFamily(
            "lkps_revocations",
            "Agent registrations revoked (a registration refused for a missing app role).",
        )
        self.session_starts = CounterFamily(
            "lkps_session_starts",
            "Session starts, by outcome: started, or the error code of the refusal.",
            ["outcome"],
        )
        self.sessions_started = self.session_starts.labels("started")
        self.graph_calls = CounterFamily(
            "lkps_graph_calls",
            "Microsoft Graph lookups of an agent's app registration, by outcome: ok, not_found or error.",
            ["outcome"],
        )
        self.graph_cache_hits = CounterFamily(
            "lkps_graph_cache_hits",
            "Client authorization checks answered from the Graph cache, without a call.",
        )
        self.graph_duration = HistogramFamily(
            "lkps_graph_call_duration_seconds",
            "Duration of Microsoft Graph lookups (token and HTTP call).",
            _GRAPH_BUCKETS,
        )
        self.webhook_events = CounterFamily(
            "lkps_webhook_events",
            "LiveKit webhook deliveries, by event (other: one the service does not handle; unknown: not"
            " verified) and verdict: processed, duplicate, ignored, refused or unavailable.",
            ["event", "verdict"],
        )
        self.request_duration = HistogramFamily(
            "lkps_http_request_duration_seconds",
            "HTTP request duration, by route template (unmatched: any other path), method and status.",
            _REQUEST_BUCKETS,
            ["route", "method", "status"],
        )
        self._families: tuple[CounterFamily | HistogramFamily, ...] = (
            self.tokens_issued,
            self.registrations,
            self.refusals,
            self.revocations,
            self.session_starts,
            self.graph_calls,
            self.graph_cache_hits,
            self.graph_duration,
            self.webhook_events,
            self.request_duration,
        )
        self._database_errors = dict.fromkeys(DATABASE_COMPONENTS, 0)
        # Series by what a request names, as sent: only the service's own values are kept as keys (an
        # unknown path, method or event is looked up by its label, "unmatched"/"OTHER"/"other", each time).
        self._durations: dict[tuple[str, str, int], Durations] = {}
        self._webhooks: dict[tuple[str, str], Cell] = {}
        self._audit: AuditState | None = None
        self._waiting_since: float | None = None
        self._last_written = 0
        self.registry.register(_StateCollector(self))

    # -- what the request path records

    def route_of(self, path: str) -> str:
        return path if path in self.routes else UNMATCHED

    def refused(self, path: str, reason: str) -> None:
        self.refusals.labels(self.route_of(path), reason).inc()

    def webhook(self, event: str, verdict: str) -> None:
        cell = self._webhooks.get((event, verdict))
        if cell is None:
            known = event in HANDLED_EVENTS or event == "unknown"
            cell = self.webhook_events.labels(event if known else "other", verdict)
            if known:
                self._webhooks[event, verdict] = cell
        cell.value += 1

    def database_error(self, component: str) -> None:
        self._database_errors[component] += 1

    def request_durations(self, path: str, method: str, status: int) -> Durations:
        """The duration series of a request to ``path`` (as sent) with ``method`` answered ``status``."""
        series = self._durations.get((path, method, status))
        if series is None:
            route = self.route_of(path)
            known = method in _METHODS
            series = self.request_duration.labels(route, method if known else "OTHER", str(status))
            if route == path and known:
                self._durations[path, method, status] = series
        return series

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
        for family in self._families:
            yield family.collect()
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
    """A duration observation per HTTP request, labelled by route template, method and status. With speedup
    ``routes``, :class:`lkps.speedups.hot_routes.HotRoutes` sits outside it and times the requests it answers
    itself, into the same series, so both dispatch paths are timed alike."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # an exception before the response starts is answered 500 by Starlette

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            seconds = perf_counter() - started
            self._metrics.request_durations(scope["path"], scope["method"], status).observe(seconds)
