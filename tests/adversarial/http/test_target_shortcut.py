"""The protocol checks a request target with one precompiled match and works out why a target is refused
only when the match fails: the match accepts exactly the targets ``canonical_target_problem`` finds no
problem with, for targets built from the characters that matter (slashes, dots, '?', '%', '\\', '#',
newlines, bytes outside ASCII)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lkps.api.connections import (
    ConnectionLimits,
    LimitedHttpToolsProtocol,
    canonical_target_match,
    canonical_target_problem,
    limited,
)
from lkps.app import create_app, server_config
from lkps.settings import Settings

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


def test_only_canonical_paths_of_the_app_skip_the_match() -> None:
    """The app's own route paths are known to the protocol and need no match; a path that would fail the
    check (an app may declare anything) is not taken in."""
    protocol = limited(
        LimitedHttpToolsProtocol,
        ConnectionLimits(),
        paths=["/api/agent/register", "/api/../admin", "/api%2Fx", "", "/a//b", "/api/health"],
    )
    assert issubclass(protocol, LimitedHttpToolsProtocol)
    assert protocol.known_targets == {b"/api/agent/register", b"/api/health"}


def test_the_served_protocol_knows_the_service_routes(gateway_settings: Settings) -> None:
    config = server_config(create_app(gateway_settings), "127.0.0.1", 0, gateway_settings.speedups)
    known = config.http.known_targets  # type: ignore[union-attr]
    assert {b"/api/agent/register", b"/api/session/start", b"/livekit/webhook"} <= known
    assert all(canonical_target_problem(target) is None for target in known)
