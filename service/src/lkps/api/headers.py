"""A request header read straight from the ASGI scope: what Starlette's ``request.headers.get(name)`` gives
(the first copy's value), without building ``Headers`` and scanning it in Python on every request."""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header's value (``name`` in lower case, as ASGI servers give names), or None."""
    raw = scope["headers"]
    table = dict(raw)
    if len(table) != len(raw):  # a name repeats (the dict kept its last copy): the first, as Headers.get
        return next((v.decode("latin-1") for k, v in raw if k == name), None)
    value = table.get(name)
    return None if value is None else value.decode("latin-1")
