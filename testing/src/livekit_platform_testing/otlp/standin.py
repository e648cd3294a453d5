"""An OTLP/HTTP trace collector stand-in: accepts ``POST /v1/traces`` (protobuf or JSON, gzip or deflate).

Received spans are kept as plain records for tests to assert on. Run as a process with
``python -m livekit_platform_sdk.testing.otlp --port 4318``; ``GET /_standin/spans`` lists what arrived.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ._server import StandInServer, json_response, serve_forever

PROTOBUF = "application/x-protobuf"

_STATUS_NAMES = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    return getattr(v, kind)


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector received it (ids as lowercase hex, empty parent for a root span)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    status_code: str
    status_message: str
    events: list[dict[str, Any]]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str

    @classmethod
    def from_proto(
        cls, span: Span, resource: dict[str, Any], scope_name: str, scope_version: str
    ) -> ReceivedSpan:
        return cls(
            name=span.name,
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex(),
            kind=int(span.kind),
            start_time_unix_nano=span.start_time_unix_nano,
            end_time_unix_nano=span.end_time_unix_nano,
            attributes=_attributes(span.attributes),
            status_code=_STATUS_NAMES.get(span.status.code, str(span.status.code)),
            status_message=span.status.message,
            events=[{"name": e.name, "attributes": _attributes(e.attributes)} for e in span.events],
            resource=resource,
            scope_name=scope_name,
            scope_version=scope_version,
        )


@dataclass
class ExportRecord:
    """One export request: how it was encoded and how many spans it carried."""

    content_type: str
    content_encoding: str
    span_count: int
    received_at: float = field(default_factory=time.time)


class OtlpStandIn(StandInServer):
    """Collector stand-in; point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``.url``."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._spans: list[ReceivedSpan] = []
        self._exports: list[ExportRecord] = []
        self._changed = threading.Condition(self._lock)

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "traces_url": self.traces_url}

    # -- inspection -----------------------------------------------------------------------------------------

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    @property
    def exports(self) -> list[ExportRecord]:
        with self._lock:
            return list(self._exports)

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
            self._exports.clear()

    def wait_for_spans(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """Block until ``predicate(spans)`` holds; raise ``TimeoutError`` naming what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._spans):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = sorted({s.name for s in self._spans})
                    raise TimeoutError(f"expected spans did not arrive within {timeout}s; received: {names}")
                self._changed.wait(remaining)
            return list(self._spans)

    # -- HTTP -----------------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._export)
        app.router.add_get("/_standin/spans", self._list_spans)
        app.router.add_post("/_standin/clear", self._clear)
        return app

    async def _export(self, request: web.Request) -> web.Response:
        # aiohttp has already undone gzip/deflate Content-Encoding (and answers 400 on a corrupt stream).
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "identity").lower()

        content_type = request.content_type
        message = ExportTraceServiceRequest()
        try:
            if content_type == PROTOBUF:
                message.ParseFromString(body)
            elif content_type == "application/json":
                json_format.Parse(body.decode(), message)
            else:
                return web.Response(
                    status=415,
                    text=f"Content-Type must be {PROTOBUF} or application/json, got {content_type!r}",
                )
        except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
            return web.Response(status=400, text=f"body is not an ExportTraceServiceRequest: {exc}")

        received: list[ReceivedSpan] = []
        for rs in message.resource_spans:
            resource = _attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                received.extend(
                    ReceivedSpan.from_proto(span, resource, ss.scope.name, ss.scope.version)
                    for span in ss.spans
                )
        with self._changed:
            self._spans.extend(received)
            self._exports.append(ExportRecord(content_type, encoding, len(received)))
            self._changed.notify_all()

        if content_type == PROTOBUF:
            return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)
        return json_response({})

    async def _list_spans(self, request: web.Request) -> web.Response:
        return json_response([asdict(s) for s in self.spans])

    async def _clear(self, request: web.Request) -> web.Response:
        self.clear()
        return json_response({})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    serve_forever(OtlpStandIn(port=args.port))


if __name__ == "__main__":
    main()
