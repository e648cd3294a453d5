"""Request bodies: at most 64 KiB, a JSON object where one is expected, each refusal naming ``body``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from ..errors import ApiError, bad_request

MAX_BODY_BYTES = 64 * 1024


async def read_body(request: Request) -> bytes:
    """The whole body, read from the ASGI messages as they come: 413 as soon as it (or its declared length)
    exceeds :data:`MAX_BODY_BYTES`, and Starlette's ``ClientDisconnect`` if the caller hangs up before it is
    complete."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def json_object(request: Request, *, allow_empty: bool) -> dict[str, Any]:
    """The body as a JSON object (strict RFC 8259 JSON: no NaN or Infinity)."""
    raw = await read_body(request)
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("the request body is empty: send a JSON object", "body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("the request body is not valid JSON: send a JSON object", "body") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "body")
    return body


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes", "body")
