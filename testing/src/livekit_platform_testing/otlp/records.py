"""What the OTLP collector stand-in received: spans as plain records, and one record per export request."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

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
        return to_attributes(v.kvlist_value.values)
    return getattr(v, kind)


def to_attributes(kvs: Any) -> dict[str, Any]:
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
            attributes=to_attributes(span.attributes),
            status_code=_STATUS_NAMES.get(span.status.code, str(span.status.code)),
            status_message=span.status.message,
            events=[{"name": e.name, "attributes": to_attributes(e.attributes)} for e in span.events],
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
