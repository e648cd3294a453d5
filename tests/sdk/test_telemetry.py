"""OTLP setup: only with an endpoint, never over the application's own tracer provider."""

from __future__ import annotations

import subprocess
import sys

import pytest

from livekit_platform_sdk.telemetry import configure_tracing


def test_no_endpoint_or_sdk_disabled_configures_nothing() -> None:
    assert configure_tracing({}) is None
    assert (
        configure_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"})
        is None
    )


@pytest.mark.slow  # a fresh interpreter importing the SDK and OpenTelemetry's SDK
def test_a_tracer_provider_set_by_the_application_is_left_in_place() -> None:
    # a fresh interpreter: the global tracer provider can be set once per process
    script = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from livekit_platform_sdk.telemetry import configure_tracing
app_provider = TracerProvider()
trace.set_tracer_provider(app_provider)
assert configure_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) is None
assert trace.get_tracer_provider() is app_provider
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow  # a fresh interpreter importing the SDK and the OTLP exporter
def test_with_an_endpoint_an_otlp_provider_is_installed() -> None:
    script = """
from opentelemetry import trace
from livekit_platform_sdk.telemetry import configure_tracing
provider = configure_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
assert provider is not None and trace.get_tracer_provider() is provider
print(type(provider._active_span_processor._span_processors[0].span_exporter).__name__)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OTLPSpanExporter"
