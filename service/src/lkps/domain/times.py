"""Times as the service states them: aware UTC datetimes, and ISO 8601 text with milliseconds and ``Z``."""

from __future__ import annotations

import datetime as dt
import functools

# utc(timestamp): the aware UTC datetime (a partial: no Python frame on every request that states a time).
utc = functools.partial(dt.datetime.fromtimestamp, tz=dt.timezone.utc)


def iso(timestamp: float) -> str:
    return utc(timestamp).isoformat(timespec="milliseconds").replace("+00:00", "Z")
