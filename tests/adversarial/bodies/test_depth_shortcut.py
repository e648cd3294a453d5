"""Session start's metadata depth check skips the walk when the metadata's JSON has too few brackets to nest
past the limit, and builds paths only for metadata that does: the answer (None, or the path of the first
value too deep) is what the full walk gives, for values shaped to fool the bracket count (brackets inside
strings and keys, nesting around the limit, arrays and objects mixed)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lkps.api.body import depth_exceeded, field_path

LIMIT = 4


def reference(value: Any, path: str, limit: int) -> str | None:
    """The walk as it was: every path built on the way."""
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


_TEXT = st.sampled_from(["", "{", "[", "{[", "a", "]}"]) | st.text(max_size=3)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=14,
)


def chain(levels: int, leaf: Any) -> Any:
    value = leaf
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


@settings(max_examples=500, deadline=None)
@given(value=st.dictionaries(_TEXT, _JSON, max_size=4), limit=st.integers(0, 6))
def test_the_shortcut_and_the_walk_name_what_the_full_walk_names(value: dict[str, Any], limit: int) -> None:
    expected = reference(value, "metadata", limit)
    assert depth_exceeded(value, "metadata", limit) == expected
    assert depth_exceeded(value, "metadata", limit, orjson.dumps(value)) == expected


@settings(max_examples=200, deadline=None)
@given(levels=st.integers(LIMIT - 2, LIMIT + 2), leaf=_JSON, padding=st.lists(_TEXT, max_size=3))
def test_nesting_around_the_limit(levels: int, leaf: Any, padding: list[str]) -> None:
    value = {"deep": chain(levels, leaf), **{f"p{i}": text for i, text in enumerate(padding)}}
    expected = reference(value, "metadata", LIMIT)
    assert depth_exceeded(value, "metadata", LIMIT) == expected
    assert depth_exceeded(value, "metadata", LIMIT, orjson.dumps(value)) == expected
