"""Structured logging: one JSON object per line in production, readable lines in development."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``msg``,
    then every ``extra=`` field in the order given (orjson encodes; the json module is the fallback for what
    orjson refuses, such as integers past 64 bits)."""

    _fallback = json.JSONEncoder(default=str)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(self.extras(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return self._fallback.encode(out)

    def timestamp(self, created: float) -> str:
        return dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat(timespec="milliseconds")

    def extras(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record's ``extra=`` fields."""
        return {k: v for k, v in record.__dict__.items() if k not in STANDARD_ATTRIBUTES and k[0] != "_"}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in STANDARD_ATTRIBUTES and not k.startswith("_")
        )
        stamp = self.formatTime(record, "%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, handler: logging.Handler) -> None:
    """``handler`` (with its formatter) the root logger's only one, at ``level``."""
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would duplicate the service's own request logging; its errors stay.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # azure-identity logs request URLs and headers at INFO; keep it to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
