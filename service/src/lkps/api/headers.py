"""A request header read straight from the ASGI scope: what Starlette's ``request.headers.get(name)`` gives
(the first copy's value), without building ``Headers`` or lower-casing and encoding the name on every
request."""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header's value (``name`` in lower case, as ASGI servers give names), or None."""
    value: bytes
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
