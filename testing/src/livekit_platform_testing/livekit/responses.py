"""The LiveKit stand-in's HTTP routes besides ``/agent``: health, the media paths it lacks, and the admin API
under ``/_standin`` (process mode: loopback only, unauthenticated like the rest of a test stand-in)."""

from __future__ import annotations

from aiohttp import web

from ..server import json_response
from .exceptions import RoomRequestError
from .models import LiveKitBackend
from .records import to_jsonable


class LiveKitResponses:
    """One handler per route; a room request the backend refuses answers ``{"error": reason}``."""

    def __init__(self, backend: LiveKitBackend) -> None:
        self._backend = backend

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def no_media(self, request: web.Request) -> web.Response:
        return web.Response(
            status=404,
            text=f"{request.path}: the LiveKit stand-in has no media server; only /agent and webhooks exist",
        )

    async def state(self, _: web.Request) -> web.Response:
        return json_response(self._backend.state())

    async def _json_body(self, request: web.Request, *fields: str) -> dict[str, str]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or any(not isinstance(body.get(f), str) for f in fields):
            raise RoomRequestError(400, f"body must be a JSON object with string fields {list(fields)}")
        return {f: body[f] for f in fields}

    async def join(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request, "token")
            result = await self._backend.join_room(body["token"])
        except RoomRequestError as exc:
            return json_response({"error": exc.reason}, status=exc.status)
        return json_response(to_jsonable(result))

    async def leave(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request, "room", "identity")
            self._backend.leave_room(body["room"], body["identity"])
        except RoomRequestError as exc:
            return json_response({"error": exc.reason}, status=exc.status)
        return json_response({"left": True})

    async def drop_workers(self, _: web.Request) -> web.Response:
        return json_response({"dropped": self._backend.drop_workers()})

    async def terminate(self, request: web.Request) -> web.Response:
        try:
            await self._backend.terminate(request.match_info["job_id"])
        except RoomRequestError as exc:
            return json_response({"error": exc.reason}, status=exc.status)
        return json_response({"terminating": True})
