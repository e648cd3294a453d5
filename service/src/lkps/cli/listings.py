"""``lkps agents`` and ``lkps sessions``: the admin views' rows read from the database, as a readable table
or JSON (``--json``, the same objects as ``GET /api/admin/...``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from typing import cast

from ..domain.times import iso, utc
from ..settings import DatabaseSettings
from ..storage.admin import (
    AGENT_STATES,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    SESSION_STATES,
    AgentState,
    Page,
    SessionFilter,
    list_agents,
    list_sessions,
)
from ..storage.engine import create_engine
from .startup import run_database

AGENT_COLUMNS = (
    "entra_app_id",
    "state",
    "enforce_client_authz",
    "last_registered_at",
    "token_expires_at",
    "revoked_at",
)
SESSION_COLUMNS = (
    "room_name",
    "state",
    "agent_entra_app_id",
    "participant_identity",
    "requested_at",
    "finished_at",
)


def add_arguments(agents: argparse.ArgumentParser, sessions: argparse.ArgumentParser) -> None:
    agents.add_argument("--state", choices=AGENT_STATES, help="only agents in this state")
    sessions.add_argument("--agent", type=_guid, help="only this agent's sessions (its Entra app ID)")
    sessions.add_argument("--state", choices=SESSION_STATES, help="only sessions in this state")
    sessions.add_argument(
        "--since", type=_time, help="sessions started at or after (ISO 8601, e.g. 2026-01-31T12:00Z)"
    )
    sessions.add_argument("--until", type=_time, help="sessions started before (ISO 8601)")
    for parser in (agents, sessions):
        parser.add_argument(
            "--limit", type=_limit, default=DEFAULT_LIMIT, help=f"rows (1-{MAX_LIMIT}; default 50)"
        )
        parser.add_argument("--offset", type=_offset, default=0, help="rows to skip (the next page's offset)")
        parser.add_argument("--json", action="store_true", help="one JSON object, as the admin view answers")


def agents(settings: DatabaseSettings, args: argparse.Namespace) -> str:
    async def read(settings: DatabaseSettings) -> Page:
        engine = create_engine(settings.database_url)
        try:
            state = cast("AgentState | None", args.state)
            return await list_agents(
                engine, now=utc(time.time()), state=state, limit=args.limit, offset=args.offset
            )
        finally:
            await engine.dispose()

    page = run_database(settings, read, doing="read the agents")
    return _render(page, "agents", AGENT_COLUMNS, args.json)


def sessions(settings: DatabaseSettings, args: argparse.Namespace) -> str:
    where = SessionFilter(agent=args.agent, state=args.state, since=args.since, until=args.until)

    async def read(settings: DatabaseSettings) -> Page:
        engine = create_engine(settings.database_url)
        try:
            return await list_sessions(engine, where, limit=args.limit, offset=args.offset)
        finally:
            await engine.dispose()

    page = run_database(settings, read, doing="read the sessions")
    return _render(page, "sessions", SESSION_COLUMNS, args.json)


def _render(page: Page, name: str, columns: Sequence[str], as_json: bool) -> str:
    rows = [{k: _text(v) if isinstance(v, dt.datetime) else v for k, v in row.items()} for row in page.rows]
    if as_json:
        return json.dumps({name: rows, "next_offset": page.next_offset}, indent=2)
    if not rows:
        return f"no {name}"
    table = [list(columns)] + [
        ["-" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if page.next_offset is not None:
        lines.append(f"(more: --offset {page.next_offset})")
    return "\n".join(lines)


def _text(value: dt.datetime) -> str:
    return iso(value.timestamp())


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a GUID: use the agent's Entra app (client) ID"
        ) from None


def _time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time: use e.g. 2026-01-31T12:00:00Z")
    return parsed.astimezone(dt.timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _bounded(value: str, low: int, high: int) -> int:
    if not (value.isdigit() and len(value) <= 9 and low <= int(value) <= high):
        raise argparse.ArgumentTypeError(f"{value!r}: use a whole number between {low} and {high}")
    return int(value)


def _limit(value: str) -> int:
    return _bounded(value, 1, MAX_LIMIT)


def _offset(value: str) -> int:
    return _bounded(value, 0, MAX_OFFSET)
