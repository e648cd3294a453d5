"""Traces to Azure Monitor: a tracer provider the SDK keeps (it never replaces one the application set)."""

from __future__ import annotations

import os

from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_azure_monitor() -> TracerProvider | None:
    """Install an Azure Monitor tracer provider when APPLICATIONINSIGHTS_CONNECTION_STRING is set.

    Resource attributes (service name, pod, namespace) come from OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES, which the Helm chart sets.
    """
    connection_string = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if not connection_string:
        return None
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(
        BatchSpanProcessor(AzureMonitorTraceExporter(connection_string=connection_string))
    )
    trace.set_tracer_provider(provider)
    return provider
