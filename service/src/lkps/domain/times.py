"""Times as the service states them: aware UTC datetimes, and ISO 8601 text with milliseconds and ``Z``."""

from __future__ import annotations

import datetime as dt

_fromtimestamp, _UTC = dt.datetime.fromtimestamp, dt.timezone.utc


def utc(timestamp: float) -> dt.datetime:
    return _fromtimestamp(timestamp, _UTC)  # (names bound once: it runs several times a request)


def iso(timestamp: float) -> str:
    return utc(timestamp).isoformat(timespec="milliseconds").replace("+00:00", "Z")
