"""The OTLP collector stand-in's backend: the spans and exports received, and waiting for spans to arrive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .records import ExportRecord, ReceivedSpan


class SpanStore:
    """Received spans and export requests, oldest first; thread-safe, readers get copies."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.RLock())
        self._spans: list[ReceivedSpan] = []
        self._exports: list[ExportRecord] = []

    def add(self, received: list[ReceivedSpan], export: ExportRecord) -> None:
        with self._changed:
            self._spans.extend(received)
            self._exports.append(export)
            self._changed.notify_all()

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            return list(self._spans)

    @property
    def exports(self) -> list[ExportRecord]:
        with self._changed:
            return list(self._exports)

    def clear(self) -> None:
        with self._changed:
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
