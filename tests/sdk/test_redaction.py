"""Redaction of text from outside: what a secret looks like is replaced, what a reader needs is kept."""

from __future__ import annotations

import pytest

from livekit_platform_sdk.redaction import REDACTED, redact
from tests.support.fakes import fake_jwt

JWT = fake_jwt({"azp": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "roles": ["Agent.Register"]})


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {JWT}",
        f"token {JWT} was refused",
        "authorization: Basic dXNlcjpwYXNzd29yZA==",
        "client_id=x&client_secret=Ab3~Q.x-y_z&grant_type=client_credentials",
        "client_assertion=abc.def.ghi&scope=api%3A%2F%2Fx",
        '{"access_token": "opaque-value", "expires_in": 3599}',
        '{"livekit_token":"lk.secret.value"}',
        "key " + "A1b2C3d4" * 6,
    ],
)
def test_token_shaped_text_is_redacted(text: str) -> None:
    shown = redact(text)
    assert REDACTED in shown
    for secret in (
        JWT,
        "dXNlcjpwYXNzd29yZA",
        "Ab3~Q.x-y_z",
        "abc.def.ghi",
        "opaque-value",
        "lk.secret",
        "A1b2C3d4" * 6,
    ):
        assert secret not in shown


def test_a_known_secret_and_each_long_part_of_it_are_redacted() -> None:
    payload = JWT.split(".")[1]
    assert redact(f"got {payload} then {JWT}", [JWT]) == f"got {REDACTED} then {REDACTED}"
    assert redact("s3cr3t-value in a sentence", ["s3cr3t-value"]) == f"{REDACTED} in a sentence"
    assert redact("short", ["short"]) == "short", "too short to identify a secret: left alone"


def test_what_a_reader_needs_is_kept() -> None:
    text = (
        "AADSTS700016: Application with identifier '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' was not found. "
        "See https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot (HTTP 401)"
    )
    assert redact(text, limit=1000) == text


def test_control_characters_are_dropped_and_the_length_bounded() -> None:
    assert redact("a\r\nforged\x1b[31m line\x00") == "a  forged [31m line"
    assert redact("one\ntwo", keep_newlines=True) == "one\ntwo"
    assert redact("word " * 100, limit=30) == "word word word word word word..."
