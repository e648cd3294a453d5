"""The OTLP collector stand-in on the wire: ``POST /v1/traces`` (protobuf or JSON, gzip or deflate) and the
admin routes under ``/_standin``."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..server import json_response
from .models import SpanStore
from .records import ExportRecord, ReceivedSpan, to_attributes

PROTOBUF = "application/x-protobuf"


class OtlpResponses:
    """One handler per route."""

    def __init__(self, store: SpanStore) -> None:
        self._store = store

    async def export(self, request: web.Request) -> web.Response:
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
            resource = to_attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                received.extend(
                    ReceivedSpan.from_proto(span, resource, ss.scope.name, ss.scope.version)
                    for span in ss.spans
                )
        self._store.add(received, ExportRecord(content_type, encoding, len(received)))

        if content_type == PROTOBUF:
            return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)
        return json_response({})

    async def list_spans(self, request: web.Request) -> web.Response:
        return json_response([asdict(s) for s in self._store.spans])

    async def clear(self, request: web.Request) -> web.Response:
        self._store.clear()
        return json_response({})
