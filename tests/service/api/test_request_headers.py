"""``lkps.api.headers.header`` reads a request header from the ASGI scope exactly as Starlette's
``request.headers.get`` does: the first copy of a repeated header, None when absent, latin-1 values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from lkps.api.headers import header

_NAMES = st.sampled_from([b"host", b"content-length", b"authorization", b"x-a", b"accept"])
_VALUES = st.binary(max_size=6)


@settings(max_examples=500, deadline=None)
@given(raw=st.lists(st.tuples(_NAMES, _VALUES), max_size=8), name=_NAMES, as_lists=st.booleans())
def test_a_header_reads_as_starlettes_headers_get(
    raw: list[tuple[bytes, bytes]], name: bytes, as_lists: bool
) -> None:
    scope = {"type": "http", "headers": [list(pair) for pair in raw] if as_lists else raw}
    assert header(scope, name) == Headers(scope=scope).get(name.decode())


def test_examples() -> None:
    scope = {"type": "http", "headers": [(b"authorization", b"a"), (b"x", b"\xe9"), (b"authorization", b"b")]}
    assert header(scope, b"authorization") == "a"
    assert header(scope, b"x") == "é"
    assert header(scope, b"content-length") is None
