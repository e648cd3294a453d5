"""The OTLP stand-in receives what the real OpenTelemetry OTLP/HTTP exporter sends, intact."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from livekit_platform_testing.otlp import OtlpStandIn


def _provider(endpoint: str, compression: Compression) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "otlp-probe", "k8s.pod.name": "probe-0"})
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, compression=compression, timeout=5))
    )
    return provider


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression, Compression.Deflate])
def test_spans_from_the_real_exporter_arrive_with_names_attributes_status_and_ids(
    otlp_collector: OtlpStandIn, compression: Compression
) -> None:
    provider = _provider(otlp_collector.traces_url, compression)
    tracer = provider.get_tracer("livekit_platform_sdk", "9.9.9")
    with tracer.start_as_current_span("platform.register", kind=SpanKind.CLIENT) as parent:
        parent.set_attribute("platform.attempt", 2)
        parent.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("livekit.connect") as child:
            child.set_status(Status(StatusCode.ERROR, "connection refused"))
            child.add_event("retry", {"delay_s": 0.5})
    provider.shutdown()

    spans = otlp_collector.wait_for_spans(lambda s: len(s) == 2)
    by_name = {s.name: s for s in spans}
    register, connect = by_name["platform.register"], by_name["livekit.connect"]
    assert register.attributes == {"platform.attempt": 2, "http.response.status_code": 200}
    assert register.parent_span_id == ""
    assert register.kind == SpanKind.CLIENT.value + 1  # OTLP numbers kinds from 1 (INTERNAL)
    assert connect.parent_span_id == register.span_id
    assert connect.trace_id == register.trace_id
    assert len(register.trace_id) == 32
    assert connect.status_code == "ERROR"
    assert connect.status_message == "connection refused"
    assert connect.events == [{"name": "retry", "attributes": {"delay_s": 0.5}}]
    assert register.resource["service.name"] == "otlp-probe"
    assert register.resource["k8s.pod.name"] == "probe-0"
    assert register.scope_name == "livekit_platform_sdk"
    assert register.scope_version == "9.9.9"
    expected = {Compression.Gzip: "gzip", Compression.Deflate: "deflate"}.get(compression, "identity")
    assert [e.content_encoding for e in otlp_collector.exports] == [expected, expected]


def test_garbage_and_unknown_content_types_are_rejected(otlp_collector: OtlpStandIn) -> None:
    bad = httpx.post(
        otlp_collector.traces_url, content=b"\xff\x00junk", headers={"Content-Type": "application/x-protobuf"}
    )
    assert bad.status_code == 400
    wrong_type = httpx.post(otlp_collector.traces_url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert otlp_collector.spans == []


def test_wait_for_spans_times_out_naming_what_arrived(otlp_collector: OtlpStandIn) -> None:
    with pytest.raises(TimeoutError, match=r"received: \[\]"):
        otlp_collector.wait_for_spans(lambda s: bool(s), timeout=0.2)


def test_process_mode_prints_its_url_serves_spans_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "livekit_platform_testing.otlp"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        provider = _provider(info["traces_url"], Compression.Gzip)
        with provider.get_tracer("probe").start_as_current_span("platform.renew"):
            pass
        provider.shutdown()
        listed = httpx.get(f"{info['url']}/_standin/spans").json()
        assert [s["name"] for s in listed] == ["platform.renew"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
