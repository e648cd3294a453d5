"""What an HTTP connection may do before the app sees it: the size of a request's head, the time it takes to
send it and its body, how long it may sit idle, how many connections one process keeps, and which request
targets route.

Enforced in the HTTP protocol (uvicorn's httptools protocol, which ``lkps serve`` runs with speedups on and
off), because none of it can be enforced later: by the time the app sees a request, its whole head has been
read into memory, a slow or silent client has held its socket as long as it liked, and an absolute-form
target (``http://host/api/...``) has been reduced to its path. A websocket connection, once upgraded, is
another protocol's and is bound only by the connection cap.

Every refusal here (431, a bad target, a request that is not HTTP, a head or body too slow, a connection past
the cap) goes to the service's refusals (:mod:`lkps.observability.refusals`): counted by reason and logged,
rate-limited, never with what the client sent.
"""

from __future__ import annotations

import asyncio
import re
from asyncio import TimerHandle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..errors import ApiError
from ..settings import Settings


class OnRefusal(Protocol):
    """Where the protocol reports a refusal: the request's path, the error, the client's address (the
    service's :class:`~lkps.observability.refusals.Refusals`, bound by ``server_config``)."""

    def __call__(self, path: str, exc: ApiError, client: str | None = None, /) -> None: ...


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits (``LKPS_MAX_HEADER_BYTES``, ``LKPS_HEADER_TIMEOUT``, ``LKPS_BODY_TIMEOUT``,
    ``LKPS_IDLE_TIMEOUT``, ``LKPS_MAX_CONNECTIONS``); the defaults are the settings' defaults."""

    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    max_connections: int = 4096

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            idle_timeout=settings.idle_timeout,
            max_connections=settings.max_connections,
        )


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
    answered 431; a head not complete ``header_timeout`` after its first byte (or after the connection
    opened), a body not complete ``body_timeout`` after its head and a connection idle for ``idle_timeout``
    are closed; a connection past ``max_connections`` is closed at once; and a non-canonical request target
    or a request that is not HTTP is answered 400 (:func:`canonical_target_problem`). Each refusal but the
    idle close is reported to ``on_refusal``."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    on_refusal: ClassVar[OnRefusal | None] = None
    # The app's own paths (canonical, each checked): a request for one of them needs no regex match.
    known_targets: ClassVar[frozenset[bytes]] = frozenset()
    # After a refusal the rest of what the client sends is read and dropped for at most this long, so that
    # closing with unread bytes (which resets the connection) does not destroy the answer before it is read.
    LINGER = 2.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._reading_head = True
        self._head_bytes = 0
        # The head's timer, then the body's while one is read, then the lingering close's after a refusal.
        self._timer: TimerHandle | None = None
        self._refusal: ApiError | None = None
        self._discarding = False
        # The class's settings, read once per connection: a class attribute read through an instance is not
        # specialized by the interpreter (3.11) and costs a dictionary miss on every request.
        self._max_head = self.limits.max_header_bytes
        self._known_targets = self.known_targets
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.transport.close()
            detail = f"the process holds {self.limits.max_connections} connections (LKPS_MAX_CONNECTIONS)"
            self._report("", ApiError(503, "too_many_connections", detail, reason="connection_limit"))
            return
        # uvicorn arms its keep-alive (idle) timer only after a response; a client that never sends a byte
        # would hold the socket for good.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
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
        except httptools.HttpParserError as exc:
            refusal, self._refusal = self._refusal, None
            if refusal is None:
                # httptools' own words ("Invalid method encountered"), never the bytes sent; uvicorn logged
                # a line of its own for each one, unlimited.
                refusal = ApiError(
                    400,
                    "bad_request",
                    f"the request is not valid HTTP/1.1 ({exc}): send an HTTP/1.1 request",
                    reason="invalid_http",
                )
            self._refuse(refusal)
            return
        if self._head_bytes:  # counted only while a head is read, and 0 once it is complete
            # A head begun and not complete: a request's head almost always arrives whole, so the timer (from
            # about its first byte) is armed only for the few that do not.
            if self._head_bytes > self._max_head:
                self._refuse(_too_large(self.limits))
            elif self._timer is None:
                self._timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
        elif not self._reading_head and self._timer is None:
            # A head complete, its body not: the same for the body, from about the end of the head.
            self._timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        # What arrived with the head may include body bytes, and a head pipelined behind another request was
        # not counted (0): count the head exactly only then.
        limit = self._max_head
        if (self._head_bytes > limit or not self._head_bytes) and self._head_size() > limit:
            self._refusal = _too_large(self.limits)
        elif self.url not in self._known_targets and canonical_target_match(self.url) is None:
            problem = canonical_target_problem(self.url)
            self._refusal = ApiError(
                400, "bad_request", f"the request target {problem}", reason="bad_request_target"
            )
        self._head_bytes = 0
        if self._timer is not None:
            self._cancel_timer()
        if self._refusal is not None:
            raise self._refusal  # stops the parser: no app, no body read
        HttpToolsProtocol.on_headers_complete(self)  # (named: cheaper than super() on every request)

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self._reading_head = True
        if self._timer is not None:
            self._cancel_timer()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._reading_head and not self.transport.is_closing():
            self.transport.close()
            detail = f"the request's head took over {self.limits.header_timeout:g} s (LKPS_HEADER_TIMEOUT)"
            self._report("", ApiError(408, "request_timeout", detail, reason="header_timeout"))

    def _body_timed_out(self) -> None:
        # The app reading the body sees the client disconnect; no answer (the app may have begun its own).
        self._timer = None
        if not self._reading_head and not self.transport.is_closing():
            self.transport.close()
            detail = f"the request's body took over {self.limits.body_timeout:g} s (LKPS_BODY_TIMEOUT)"
            self._report(self.scope["path"], ApiError(408, "request_timeout", detail, reason="body_timeout"))

    def _report(self, path: str, refusal: ApiError) -> None:
        # A refusal's path is "" (the route "unmatched") unless its head was read and routed: a target the
        # protocol refuses never is a route.
        if self.on_refusal is not None:
            self.on_refusal(path, refusal, self.client[0] if self.client else None)
        elif refusal.reason == "invalid_http":
            self.logger.warning("Invalid HTTP request received.")  # uvicorn's line, when nothing counts

    def _refuse(self, refusal: ApiError) -> None:
        self._cancel_timer()  # from here on, the timer is the lingering close's
        if self.transport.is_closing():
            return
        self._report("", refusal)
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
            self._timer = self.loop.call_later(self.LINGER, self.transport.close)
        else:
            self.transport.close()


def _too_large(limits: ConnectionLimits) -> ApiError:
    return ApiError(
        431,
        "request_header_fields_too_large",
        f"the request's headers exceed {limits.max_header_bytes} bytes (LKPS_MAX_HEADER_BYTES)",
    )


def limited(
    protocol: type[LimitedHttpToolsProtocol],
    limits: ConnectionLimits,
    on_refusal: OnRefusal | None = None,
    paths: Iterable[str] = (),
) -> type[HttpToolsProtocol]:
    """``protocol`` bound to ``limits``, reporting its refusals to ``on_refusal`` and knowing the app's
    ``paths`` (uvicorn takes a protocol class and builds one per connection): ``protocol`` itself when they
    are its own."""
    known = frozenset(p.encode() for p in paths if canonical_target_match(p.encode()) is not None)
    if limits == protocol.limits and on_refusal is protocol.on_refusal and known == protocol.known_targets:
        return protocol
    # (a function stored on the class would be bound to each protocol: wrapped as a static method)
    sink = on_refusal if on_refusal is None else staticmethod(on_refusal)
    attributes = {
        "limits": limits,
        "on_refusal": sink,
        "known_targets": known,
        "__module__": protocol.__module__,
    }
    return type(protocol.__name__, (protocol,), attributes)
