"""Code that exists only for throughput, each piece behind one name in ``LKPS_SPEEDUPS`` (default: all on).

With a name off, the service runs the plain path that name replaces; the API answers the same either way
(tests/service runs every API test both ways). ``lkps.app`` makes each choice once, where the app is built.
The benchmarks (``make bench``, ``make bench-instructions``) say what each name buys.
"""

from __future__ import annotations

from collections.abc import Iterable

# Each name, and what it replaces when on (the plain path when off).
SPEEDUPS: dict[str, str] = {
    "http": "uvicorn's httptools protocol over a corked transport (http_protocol.py), not uvicorn's own",
    "routes": "the API's POST routes dispatched ahead of Starlette's router (hot_routes.py)",
    "json": "responses rendered by orjson with their headers made directly (responses.py)",
    "tokens": "LiveKit tokens signed from prepared claims (tokens.py) instead of livekit-api's claim set",
    "webhooks": "webhooks verified and read from their JSON (webhooks.py, event_json.py) before livekit-api's"
    " WebhookReceiver",
    "bulk": "PostgreSQL batches as one statement with one JSON parameter (bulk.py) instead of SQLAlchemy"
    " statements",
    "logs": "log lines formatted and written once per event-loop iteration (logs.py)",
    "caches": "parsed GUIDs, room-name-safe CWIDs and gateway profiles cached, random bytes fetched in bulk,"
    " gateway headers read in one pass (caches.py)",
    "gc": "start-up objects frozen out of the cyclic garbage collector's view (shorter pauses under load)",
}
ALL: frozenset[str] = frozenset(SPEEDUPS)


def parse(value: str) -> tuple[frozenset[str], list[str]]:
    """``LKPS_SPEEDUPS``: ``on`` (every speedup), ``off`` (the plain path), or a comma-separated list of the
    names to turn on. The names it holds, and the unknown names it was given."""
    text = value.strip().lower()
    if text in {"", "1", "true", "yes", "on", "all"}:
        return ALL, []
    if text in {"0", "false", "no", "off", "none"}:
        return frozenset(), []
    names = {part.strip() for part in text.split(",") if part.strip()}
    return frozenset(names & ALL), sorted(names - ALL)


def spelled(names: Iterable[str]) -> str:
    """``names`` as ``LKPS_SPEEDUPS`` takes them: ``on``, ``off`` or the list in the order of SPEEDUPS."""
    chosen = set(names)
    if chosen >= ALL:
        return "on"
    if not chosen:
        return "off"
    return ",".join(name for name in SPEEDUPS if name in chosen)
