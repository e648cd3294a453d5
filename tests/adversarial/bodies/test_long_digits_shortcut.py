"""A body is read a second time, exactly, only when it holds a run of 19 digits or more (the only integers
that can fall outside the 64-bit range). The run is found with each digit read as "0" and a substring
search instead of the regex ``\\d{19,}``: the two agree on any bytes."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from lkps.api.body import _DIGITS_AS_ZERO, _LONG_DIGITS

REFERENCE = re.compile(rb"\d{19,}")
_PIECES = st.sampled_from(
    [b"0", b"9", b"5" * 18, b"1" * 19, b"-", b".", b"e", b'"', b"a", b"\xd9", b"\xff", b" "]
)


def shortcut(raw: bytes) -> bool:
    return raw.translate(_DIGITS_AS_ZERO).find(_LONG_DIGITS) >= 0


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=12))
def test_the_shortcut_finds_exactly_the_runs_the_regex_finds(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert shortcut(raw) is (REFERENCE.search(raw) is not None), raw


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes(raw: bytes) -> None:
    assert shortcut(raw) is (REFERENCE.search(raw) is not None), raw


def test_examples() -> None:
    assert shortcut(b'{"n": 1234567890123456789}')
    assert not shortcut(b'{"n": 123456789012345678}')
    assert not shortcut(b'{"n": "123456789", "m": 1234567890}')
    assert shortcut(b"0000000000000000000")
