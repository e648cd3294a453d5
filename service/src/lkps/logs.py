"""Structured logging: one JSON object per line in production, readable lines in development."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
import threading
from typing import Any, TextIO

import orjson

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}
# Attributes formatters add to a record after it is made (``logging.Formatter.format`` by another handler).
_ADDED_LATER = frozenset({"message", "asctime", "color_message"})
# The fraction and offset of every timestamp: ".000+00:00" to ".999+00:00".
_MILLISECONDS = tuple(f".{ms:03d}+00:00" for ms in range(1000))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``extra=`` fields, in the order given. ``Logger.makeRecord`` adds them after every
    standard attribute, so they are read from the end of the record's ``__dict__`` back to the first
    standard one (past those formatters add later): a few steps instead of a pass over all ~25."""
    found: list[tuple[str, Any]] = []
    for key, value in reversed(record.__dict__.items()):
        if key in _STANDARD:
            if key in _ADDED_LATER:
                continue
            break
        if key[0] != "_":
            found.append((key, value))
    found.reverse()
    return dict(found)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``msg``,
    then every ``extra=`` field. Runs once per request: orjson encodes (the json module as the fallback for
    what orjson refuses, such as integers past 64 bits), and the timestamp's seconds part (the same for every
    line within a second) is reused."""

    _fallback = json.JSONEncoder(default=str)

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            stamp = dt.datetime.fromtimestamp(second, dt.timezone.utc)
            self._second_text, self._second = stamp.strftime("%Y-%m-%dT%H:%M:%S"), second
        return self._second_text + _MILLISECONDS[int((created - second) * 1000)]

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_extras(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return self._fallback.encode(out)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        )
        stamp = self.formatTime(record, "%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` that, on the event loop, formats and writes the records of one loop iteration
    together, right after it (``call_soon``), in one write.

    On the request path a log line then costs only its ``LogRecord``: formatting many records in one loop
    is several times cheaper than one at a time between requests, and one write replaces one per line.
    Records from other threads, or with no loop running, are written at once (after any pending ones, so
    lines keep their order); ``flush``/``close`` (``logging.shutdown`` at exit) write whatever is pending.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[logging.LogRecord] = []
        # The running loop that will write what is pending, and its thread (None: nothing is scheduled).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        self._pending.append(record)
        loop = self._loop
        if loop is not None and self._thread == threading.get_ident() and loop.is_running():
            return  # written with the others: no loop lookup (on Python 3.11 a getpid system call each)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread
            self._write_pending()
            return
        if loop is not self._loop:
            loop.call_soon(self._write_soon)
            self._loop, self._thread = loop, threading.get_ident()

    def _write_soon(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._write_pending()

    def _write_pending(self) -> None:
        records, self._pending = self._pending, []
        self._loop = None
        lines = []
        for record in records:
            try:
                lines.append(self.format(record))
            except Exception:  # logging's contract: report, never raise
                self.handleError(record)
        if not lines:
            return
        try:
            self.stream.write(self.terminator.join(lines) + self.terminator)
            self.stream.flush()
        except Exception:  # same contract
            self.handleError(records[-1])

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
        super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Neither formatter prints the caller's file and line, thread or process, so records need not collect
    # them (the logging HOWTO's "Optimization" settings): that saves a stack walk and lookups per line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's access log would duplicate the service's own request logging; its errors stay.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # azure-identity logs request URLs and headers at INFO; keep it to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
