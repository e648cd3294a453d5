"""The protocol checks a request target with one precompiled match and works out why a target is refused
only when the match fails: the match accepts exactly the targets ``canonical_target_problem`` finds no
problem with, for targets built from the characters that matter (slashes, dots, '?', '%', '\\', '#',
newlines, bytes outside ASCII)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lkps.api.connections import canonical_target_match, canonical_target_problem

_PIECES = st.sampled_from(
    [b"/", b".", b"..", b"?", b"%", b"\\", b"#", b"a", b"api", b"\n", b" ", b"\xff", b"%2F", b"/./", b"/../"]
)


def agrees(target: bytes) -> None:
    assert (canonical_target_match(target) is not None) is (canonical_target_problem(target) is None), target


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=8))
def test_the_match_accepts_exactly_the_targets_without_a_problem(pieces: list[bytes]) -> None:
    agrees(b"".join(pieces))


@settings(max_examples=500, deadline=None)
@given(target=st.binary(max_size=12))
def test_any_bytes(target: bytes) -> None:
    agrees(target)


def test_examples() -> None:
    for target in [
        b"",
        b"/",
        b"/?",
        b"/?a=%2F#x",
        b"/api/agent/register",
        b"/api/agent/register/",
        b"/api/agent/register?x=/../",
        b"/api/agent//register",
        b"/api/./agent",
        b"/api/../agent",
        b"/api/.",
        b"/api/..",
        b"/api/..?x",
        b"/api/...",
        b"/api/.a",
        b"/api/a.",
        b"/.",
        b"/..",
        b"/...",
        b"//",
        b"/api%2F",
        b"/api\\x",
        b"/api#x",
        b"/api\n",
        b"http://host/api",
        b"*",
    ]:
        agrees(target)
