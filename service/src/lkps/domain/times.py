"""Times as the service states them: aware UTC datetimes, and ISO 8601 text with milliseconds and ``Z``."""

from __future__ import annotations

import datetime as dt


def utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def iso(timestamp: float) -> str:
    return utc(timestamp).isoformat(timespec="milliseconds").replace("+00:00", "Z")
