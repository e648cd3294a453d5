"""What an HTTP connection may do before the app sees it: the size of a request's head, the time it takes to
send it, how long it may sit idle, how many connections one process keeps, and which request targets route.

Enforced in the HTTP protocol (uvicorn's httptools protocol, which ``lkps serve`` runs with speedups on and
off), because none of it can be enforced later: by the time the app sees a request, its whole head has been
read into memory, a slow or silent client has held its socket as long as it liked, and an absolute-form
target (``http://host/api/...``) has been reduced to its path. A websocket connection, once upgraded, is
another protocol's and is bound only by the connection cap.
"""

from __future__ import annotations

import asyncio
import re
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import ClassVar

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..settings import Settings


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits (``LKPS_MAX_HEADER_BYTES``, ``LKPS_HEADER_TIMEOUT``, ``LKPS_IDLE_TIMEOUT``,
    ``LKPS_MAX_CONNECTIONS``); the defaults are the settings' defaults."""

    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_connections: int = 4096

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            idle_timeout=settings.idle_timeout,
            max_connections=settings.max_connections,
        )


class RefusedError(Exception):
    """A request answered by the protocol itself, before any app sees it."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


# Exactly the targets canonical_target_problem finds no problem with: a path of non-empty segments (none of
# them '.' or '..', no '%', '\\' or '#'), perhaps ending in '/', then any query. One match a request; the
# reason is worked out only for a target that fails it.
canonical_target_match = re.compile(
    rb"(?:/(?!\.\.?(?:[/?]|\Z))[^/?%\\#]+)+/?(?:\?.*)?|/(?:\?.*)?", re.DOTALL
).fullmatch


def canonical_target_problem(target: bytes) -> str | None:
    """Why ``target`` (the request line's target) is not the canonical origin-form path a gateway routing by
    path would see, or ``None`` when it is. The query string may hold anything."""
    path = target.split(b"?", 1)[0]
    if not path.startswith(b"/"):
        return "is not a path (absolute-form or asterisk targets are not served)"
    if b"%" in path:
        return "is percent-encoded (send the path as it is routed: /api/agent/register)"
    if b"//" in path or b"\\" in path or b"#" in path:
        return "has an empty segment, a backslash or a fragment"
    if b"/./" in path or b"/../" in path or path.endswith((b"/.", b"/..")):
        return "has a dot segment ('.' or '..')"
    return None


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits`: a head over ``max_header_bytes`` is
    answered 431, a head not complete ``header_timeout`` after its first byte (or after the connection opened)
    and a connection idle for ``idle_timeout`` are closed, a connection past ``max_connections`` is closed at
    once, and a non-canonical request target is answered 400 (:func:`canonical_target_problem`)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    # After a refusal the rest of what the client sends is read and dropped for at most this long, so that
    # closing with unread bytes (which resets the connection) does not destroy the answer before it is read.
    LINGER = 2.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._reading_head = True
        self._head_bytes = 0
        self._head_timer: TimerHandle | None = None
        self._refusal: RefusedError | None = None
        self._discarding = False
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.transport.close()
            return
        # uvicorn arms its keep-alive (idle) timer only after a response; a client that never sends a byte
        # would hold the socket for good.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, with the head's size and time limits, and refusals answered with their reason.
        if self._discarding:
            return
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            refusal, self._refusal = self._refusal, None
            if refusal is not None:
                self._refuse(refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._head_bytes:  # counted only while a head is read, and 0 once it is complete
            # A head begun and not complete: a request's head almost always arrives whole, so the timer (from
            # about its first byte) is armed only for the few that do not.
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(_too_large(self.limits))
            elif self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        # What arrived with the head may include body bytes, and a head pipelined behind another request was
        # not counted (0): count the head exactly only then.
        limit = self.limits.max_header_bytes
        if (self._head_bytes > limit or not self._head_bytes) and self._head_size() > limit:
            self._refusal = _too_large(self.limits)
        elif canonical_target_match(self.url) is None:
            problem = canonical_target_problem(self.url)
            self._refusal = RefusedError(400, "bad_request", f"the request target {problem}")
        self._head_bytes = 0
        if self._head_timer is not None:
            self._cancel_head_timer()
        if self._refusal is not None:
            raise self._refusal  # stops the parser: no app, no body read
        HttpToolsProtocol.on_headers_complete(self)  # (named: cheaper than super() on every request)

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self._reading_head = True

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, refusal: RefusedError) -> None:
        self._cancel_head_timer()  # from here on, the timer is the lingering close's
        if self.transport.is_closing():
            return
        body = orjson.dumps({"error": refusal.error, "detail": refusal.detail})
        head = [STATUS_LINE[refusal.status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._discarding = True
            self._head_timer = self.loop.call_later(self.LINGER, self.transport.close)
        else:
            self.transport.close()


def _too_large(limits: ConnectionLimits) -> RefusedError:
    return RefusedError(
        431,
        "request_header_fields_too_large",
        f"the request's headers exceed {limits.max_header_bytes} bytes (LKPS_MAX_HEADER_BYTES)",
    )


def limited(protocol: type[LimitedHttpToolsProtocol], limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """``protocol`` bound to ``limits`` (uvicorn takes a protocol class and builds one per connection):
    ``protocol`` itself when they are its own."""
    if limits == protocol.limits:
        return protocol
    return type(protocol.__name__, (protocol,), {"limits": limits, "__module__": protocol.__module__})
