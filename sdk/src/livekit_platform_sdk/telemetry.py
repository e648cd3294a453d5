"""OpenTelemetry for the SDK: tracer, span attribute names, OTLP setup from the standard OTEL_* variables."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import __version__

TRACER_NAME = "livekit_platform_sdk"

SPAN_REGISTER = "platform.register"
SPAN_RENEW = "platform.renew"
SPAN_CONNECT = "livekit.connect"

# Attribute keys; values are never tokens or secrets.
ATTR_AGENT_APP_ID = "livekit_platform.agent.app_id"
ATTR_PLATFORM_URL = "livekit_platform.url"
ATTR_ATTEMPT = "livekit_platform.attempt"
ATTR_HTTP_STATUS = "http.response.status_code"
ATTR_TOKEN_EXPIRES_AT = "livekit_platform.token.expires_at"  # noqa: S105 (a name)
ATTR_LIVEKIT_URL = "livekit.url"
ATTR_WORKER_ID = "livekit.worker.id"
ATTR_AGENT_NAME = "livekit.agent.name"

logger = logging.getLogger("livekit_platform_sdk")


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The SDK's tracer from ``provider``, by default the global tracer provider."""
    return trace.get_tracer(TRACER_NAME, __version__, tracer_provider=provider)


def configure_tracing(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Install an OTLP/HTTP tracer provider when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Returns the provider it installed (flush it on shutdown), or None when tracing is not configured here:
    no endpoint, ``OTEL_SDK_DISABLED=true``, or the application already set its own tracer provider.
    """
    env = os.environ if environ is None else environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        logger.debug("a tracer provider is already set by the application: leaving it in place")
        return None
    # Resource.create() merges OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; only the fallback name is ours.
    defaults = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "livekit-agent"}
    provider = TracerProvider(resource=Resource.create(defaults))
    # imported here so an app without an endpoint never loads the exporter (and its requests dependency)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        return None  # lost a race with the application setting its own provider
    logger.info("exporting traces over OTLP/HTTP", extra={"endpoint": endpoint})
    return provider
