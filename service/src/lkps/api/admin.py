"""``GET /api/admin/agents`` and ``GET /api/admin/sessions``: read-only views of the registry and the session
lifecycle rows, for operators.

In ``entra`` mode the token must carry the admin app role (``LKPS_ENTRA_ADMIN_ROLE``); in ``gateway`` mode the
caller's client ID must be one of ``LKPS_GATEWAY_ADMIN_CLIENT_IDS``, and with none configured the views answer
404 as if they did not exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..auth.identity import IdentityResolver
from ..domain.times import iso, utc
from ..errors import ApiError, bad_request
from ..observability.metrics import Metrics
from ..settings import Settings
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
from .responses import JsonResponse

_PAGING = ("limit", "offset")


@dataclass
class AdminViews:
    settings: Settings
    identity: IdentityResolver
    engine: AsyncEngine
    json: JsonResponse
    clock: Callable[[], float]
    metrics: Metrics

    @property
    def enabled(self) -> bool:
        if self.settings.identity_mode == "entra":
            return bool(self.settings.entra_admin_role)
        return bool(self.settings.gateway_admin_client_ids)

    async def agents(self, request: Request) -> Response:
        await self._authorize(request)
        query = _query(request, ("state", *_PAGING))
        state = cast("AgentState | None", _choice(query, "state", AGENT_STATES))
        limit, offset = _paging(query)
        now = utc(self.clock())
        page = await self._read(list_agents(self.engine, now=now, state=state, limit=limit, offset=offset))
        return self.json({"agents": _rows(page), "next_offset": page.next_offset})

    async def sessions(self, request: Request) -> Response:
        await self._authorize(request)
        query = _query(request, ("agent", "state", "since", "until", *_PAGING))
        where = SessionFilter(
            agent=_agent(query),
            state=_choice(query, "state", SESSION_STATES),
            since=_time(query, "since"),
            until=_time(query, "until"),
        )
        limit, offset = _paging(query)
        page = await self._read(list_sessions(self.engine, where, limit=limit, offset=offset))
        return self.json({"sessions": _rows(page), "next_offset": page.next_offset})

    async def _authorize(self, request: Request) -> None:
        if not self.enabled:
            raise HTTPException(404)  # as any path the service does not have
        caller = await self.identity.resolve(request.headers, "admin")
        if self.settings.identity_mode == "gateway" and (
            (caller.client_id or "").lower() not in self.settings.gateway_admin_client_ids
        ):
            header = self.settings.gateway_client_id_header
            raise ApiError(
                403,
                "forbidden",
                f"the caller's client ID ({header}) is not one of LKPS_GATEWAY_ADMIN_CLIENT_IDS",
                header,
                reason="not_admin",
            )

    async def _read(self, reading: Any) -> Page:
        try:
            page: Page = await reading
        except (SQLAlchemyError, OSError):
            self.metrics.database_error("admin")
            raise ApiError(
                503, "database_unavailable", "the database could not be read; retry shortly"
            ) from None
        return page


def _rows(page: Page) -> list[dict[str, Any]]:
    return [
        {k: iso(v.timestamp()) if isinstance(v, dt.datetime) else v for k, v in row.items()}
        for row in page.rows
    ]


def _query(request: Request, known: tuple[str, ...]) -> Mapping[str, str]:
    params = request.query_params
    for name in params:
        if name not in known:
            raise bad_request(f"unknown query parameter {name!r}: use {', '.join(known)}", name)
        if len(params.getlist(name)) > 1:
            raise bad_request(f"query parameter {name} is given more than once", name)
    return params


def _choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is not None and value not in choices:
        raise bad_request(f"{name} must be one of {', '.join(choices)}", name)
    return value


def _agent(query: Mapping[str, str]) -> str | None:
    value = query.get("agent")
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise bad_request("agent is not a GUID: use the agent's Entra app (client) ID", "agent") from None


def _time(query: Mapping[str, str], name: str) -> dt.datetime | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise bad_request(f"{name} is not an ISO 8601 time with a zone: use e.g. 2026-01-31T12:00:00Z", name)
    return parsed.astimezone(dt.timezone.utc)


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    return (
        _bounded(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        _bounded(query, "offset", 0, 0, MAX_OFFSET),
    )


def _bounded(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not (value.isdigit() and len(value) <= 9 and low <= int(value) <= high):
        raise bad_request(f"{name} must be a whole number between {low} and {high}", name)
    return int(value)
