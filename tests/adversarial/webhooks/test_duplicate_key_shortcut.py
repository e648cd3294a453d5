"""The fast path's repeated-key check (``keys_unique``) answers from two byte counts for most bodies and walks
the parsed document only for the rest: both give exactly the verdict protobuf's parser implies (no key
repeated in any object, nothing nested past ``MAX_DEPTH``) for texts shaped to fool the counts: colons and
braces inside strings, escapes, repeated keys holding colons, nesting around the limit."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lkps.speedups.event_json import MAX_DEPTH, keys_unique, keys_walked

_KEYS = st.sampled_from(["a", "b", "a:", ":", "{", "[", "x:y", "é", "id"]) | st.text(max_size=4)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _KEYS
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(_KEYS, inner), max_size=3),
    max_leaves=10,
)


def _text(value: Any, ascii_only: bool, spaced: bool) -> str:
    """``value``'s JSON, where a list of pairs is an object that may repeat keys."""
    colon, comma = (": ", ", ") if spaced else (":", ",")
    if isinstance(value, list) and all(isinstance(item, tuple) for item in value) and value:
        items = (
            json.dumps(key, ensure_ascii=ascii_only) + colon + _text(item, ascii_only, spaced)
            for key, item in value
        )
        return "{" + comma.join(items) + "}"
    if isinstance(value, list):
        return "[" + comma.join(_text(item, ascii_only, spaced) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise KeyError("repeated")
    return dict(pairs)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def expected(body: bytes) -> bool:
    """What protobuf's parser implies: no key repeated in an object, at most MAX_DEPTH levels."""
    try:
        document = json.loads(body, object_pairs_hook=_repeats)
    except KeyError:
        return False
    return _depth(document) <= MAX_DEPTH


def check(body: bytes) -> None:
    document = orjson.loads(body)
    want = expected(body)
    assert keys_walked(body, document) is want
    assert keys_unique(body, document) is want


@settings(max_examples=400, deadline=None)
@given(
    pairs=st.lists(st.tuples(_KEYS, _JSON), max_size=5),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_the_shortcut_gives_the_walks_verdict(
    pairs: list[tuple[str, Any]], ascii_only: bool, spaced: bool
) -> None:
    check(_text(pairs, ascii_only, spaced).encode() if pairs else b"{}")


@settings(max_examples=200, deadline=None)
@given(
    levels=st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3),
    brackets_in_strings=st.integers(0, 4),
    objects=st.booleans(),
    repeat=st.booleans(),
)
def test_nesting_around_the_limit(levels: int, brackets_in_strings: int, objects: bool, repeat: bool) -> None:
    # ``levels`` containers inside the top-level object, plus braces written inside strings (which the byte
    # count sees and the parser does not).
    opener, closer = ('{"k":', "}") if objects else ("[", "]")
    inner = opener * (levels - 1) + "1" + closer * (levels - 1)
    strings = ", ".join(f'"s{i}": "{{["' for i in range(brackets_in_strings))
    body = '{"n": ' + inner + (", " + strings if strings else "") + (', "n": 2' if repeat else "") + "}"
    check(body.encode())


def test_examples() -> None:
    for body in [
        b"{}",
        b'{"a": 1}',
        b'{"a": 1, "a": 1}',
        b'{"a:": 1, "a:": 1}',  # the repeated key holds a colon
        b'{"a": "x:y", "b": "x:y"}',
        b'{"a": "x:y", "a": "x:y"}',
        b'{"a": {"b": 1}, "c": {"b": 1}}',
        b'{"a": {"b": 1, "b": 2}}',
        b'{"\\u0061": 1, "a": 2}',  # the same key, escaped
        b'{"a": "\\u003a", "b": 1}',  # a colon written as an escape
        b'{"a": "\\u003a", "a": ":"}',
        b'{"a": "\\\\u", "a": 1}',  # an escaped backslash before a u
        b'{"a": [1, {"b": ":", "c": ":"}], "d": ":"}',
        b'{"a": [1, {"b": ":", "b": ":"}]}',
    ]:
        check(body)
