"""Request bodies: bounded in size, a JSON object where one is expected, numbers that keep their value, and
each refusal a 400 naming the field (``body``, or the path to the value, e.g. ``metadata.a.b``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from ..errors import ApiError, bad_request
from .headers import header

MAX_BODY_BYTES = 64 * 1024
# What LiveKit can send: its events carry room and participant metadata and attributes (each up to 64 KB with
# its default limits), so a genuine event can exceed 64 KiB; 1 MiB covers them with room to spare and keeps
# the body bounded.
MAX_WEBHOOK_BODY_BYTES = 1024 * 1024
# Integers survive a round trip through the service (and the agent's JSON parser) only in the 64-bit range:
# orjson reads a longer integer as a float, silently changing it.
INT_RANGE = (-(2**63), 2**64 - 1)
# The only integers that can fall outside INT_RANGE have 19 digits or more. Found with each digit read as
# "0" and a substring search: about 4x cheaper than the regex \d{19,} (which tries every position).
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_DIGITS = b"0" * 19
MAX_PATH_SHOWN = 80


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, read from the ASGI messages as they come: 413 as soon as it (or its declared length)
    exceeds ``limit``, and Starlette's ``ClientDisconnect`` if the caller hangs up before it is complete."""
    message = await request.receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    first: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: the whole body came with the head
        if len(first) > limit:
            raise _too_large(limit)
        return first
    declared = header(request.scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = [first]
    size = len(first)
    if size > limit:
        raise _too_large(limit)
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def json_object(request: Request, *, allow_empty: bool) -> dict[str, Any]:
    """The body as a JSON object (strict RFC 8259 JSON: no NaN or Infinity; integers in :data:`INT_RANGE`)."""
    raw = await read_body(request)
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("the request body is empty: send a JSON object", "body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson's message says what and where (never the content): "number is infinity ...: line 1 column 9"
        raise bad_request(f"the request body is not valid JSON ({exc}): send a JSON object", "body") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "body")
    if raw.translate(_DIGITS_AS_ZERO).find(_LONG_DIGITS) >= 0:  # (find(): `in` builds a TypeError first)
        _check_integers(raw)
    return body


def _check_integers(raw: bytes) -> None:
    """400 naming the first integer outside :data:`INT_RANGE` (read exactly, as Python's json reads it)."""
    try:
        exact = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request(
            "the request body nests too deeply or has an integer too long to read: send a flatter object",
            "body",
        ) from None
    stack: list[tuple[Any, str]] = [(exact, "")]
    while stack:
        value, path = stack.pop()
        if type(value) is int and not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise bad_request(
                f"{path} is an integer outside the 64-bit range ({INT_RANGE[0]} to {INT_RANGE[1]}): send"
                " it as a string",
                path,
            )
        if isinstance(value, dict):
            stack.extend((v, field_path(path, k)) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value))))


def field_path(path: str, key: str) -> str:
    """``path.key``, shown safely (printable ASCII, escapes otherwise) and cut to :data:`MAX_PATH_SHOWN`."""
    shown = key.encode("ascii", "backslashreplace").decode("ascii")
    joined = f"{path}.{shown}" if path else shown
    return joined if len(joined) <= MAX_PATH_SHOWN else joined[: MAX_PATH_SHOWN - 1] + "…"


def depth_exceeded(value: Any, path: str, limit: int, text: bytes | None = None) -> str | None:
    """The path of the first array or object nested more than ``limit`` levels inside ``value``, else None.

    ``text``, if given, is ``value`` as JSON: each array and object in it is one ``[`` or ``{``, so a text
    with at most ``limit`` of them cannot nest deeper and is not walked. Paths are built only for a value
    that does nest deeper."""
    if text is not None and text.count(b"{") + text.count(b"[") <= limit:
        return None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            inner: Iterable[Any] = item.values()
        elif isinstance(item, list):
            inner = item
        else:
            continue
        if depth >= limit:
            return _first_too_deep(value, path, limit)  # the same walk, naming what it finds
        stack.extend((v, depth + 1) for v in inner)
    return None


def _first_too_deep(value: Any, path: str, limit: int) -> str | None:
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= limit:
                return where
            stack.extend((v, field_path(where, k), depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            if depth >= limit:
                return where
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
    return None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body exceeds {limit} bytes", "body")
