"""OpenTelemetry server spans for each request, exported over OTLP/HTTP when an endpoint is configured."""

from __future__ import annotations

import logging

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..settings import Settings

TRACER_NAME = "lkps"


def build_tracer_provider(settings: Settings) -> TracerProvider | None:
    """A provider exporting to ``OTEL_EXPORTER_OTLP_ENDPOINT``, or ``None`` when tracing is off."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name, "service.version": __version__})
    )
    # The exporter reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers, compression) itself.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class TracingMiddleware:
    """One SERVER span per HTTP request, continuing the caller's trace (W3C ``traceparent``)."""

    def __init__(self, app: ASGIApp, provider: TracerProvider, routes: frozenset[str]) -> None:
        self._app = app
        self._tracer = provider.get_tracer(TRACER_NAME, __version__)
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope["method"]
        # Unknown paths share one name so scanners cannot blow up span cardinality.
        route = scope["path"] if scope["path"] in self._routes else "unmatched"
        with self._tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.scheme": scope.get("scheme", "http"),
            },
        ) as span:

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self._app(scope, receive, send_wrapper)


class TraceContext(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as OTLP and W3C ``traceparent`` spell them) to each record
    made inside a span: a request's lines carry its trace. On the handler, so it runs when the record is made
    (a batching handler formats it later, outside the request's context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True
