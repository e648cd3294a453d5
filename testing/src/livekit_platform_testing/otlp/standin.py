"""The OTLP/HTTP trace collector stand-in: accepts ``POST /v1/traces`` (protobuf or JSON, gzip or deflate).

Received spans are kept as plain records for tests to assert on. Run as a process with
``python -m livekit_platform_testing.otlp --port 4318``; ``GET /_standin/spans`` lists what arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..server import StandInServer
from .models import SpanStore
from .records import ExportRecord, ReceivedSpan
from .urls import build_app


class OtlpStandIn(StandInServer):
    """Collector stand-in; point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``.url``."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.store = SpanStore()
        """What arrived; the methods below read it."""

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "traces_url": self.traces_url}

    # -- inspection -----------------------------------------------------------------------------------------

    @property
    def spans(self) -> list[ReceivedSpan]:
        return self.store.spans

    @property
    def exports(self) -> list[ExportRecord]:
        return self.store.exports

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def clear(self) -> None:
        self.store.clear()

    def wait_for_spans(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """Block until ``predicate(spans)`` holds; raise ``TimeoutError`` naming what did arrive otherwise."""
        return self.store.wait_for_spans(predicate, timeout)

    # -- HTTP -----------------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        return build_app(self.store)
