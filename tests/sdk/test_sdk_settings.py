"""Settings come from the environment in one place, and every problem names the variable and the fix."""

from __future__ import annotations

import pytest

from livekit_platform_sdk.settings import Settings, SettingsError

BASE = {"LIVEKIT_PLATFORM_URL": "https://platform.example.com", "LIVEKIT_PLATFORM_SCOPE": "api://p/.default"}


def test_defaults_enforce_client_authz_and_renew_five_minutes_before_expiry() -> None:
    settings = Settings.from_env(BASE)
    assert settings.enforce_client_authz is True
    assert settings.renew_margin == 300
    assert settings.readiness_port == 8082
    assert settings.register_url == "https://platform.example.com/api/agent/register"


def test_missing_url_and_scope_are_both_reported_with_their_fix() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({})
    message = str(error.value)
    assert "LIVEKIT_PLATFORM_URL is not set: set it to the base URL" in message
    assert "LIVEKIT_PLATFORM_SCOPE is not set: set it to the Entra scope" in message
    assert len(error.value.problems) == 2


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LIVEKIT_PLATFORM_URL", "platform.example.com", "is not an http(s) URL"),
        ("LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ", "maybe", "is not a boolean: set it to true or false"),
        ("LIVEKIT_PLATFORM_HTTP_TIMEOUT", "soon", "is not a number"),
        ("LIVEKIT_PLATFORM_RENEW_MARGIN", "-1", "is out of range"),
        (
            "LIVEKIT_PLATFORM_READINESS_PORT",
            "70000",
            "is out of range: set it to an integer between 0 and 65535",
        ),
        ("LIVEKIT_PLATFORM_REGISTER_ATTEMPTS", "0", "is out of range: set it to an integer at least 1"),
    ],
)
def test_invalid_value_names_variable_value_and_fix(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**BASE, name: value})
    assert f"{name}={value!r}" in str(error.value)
    assert expected in str(error.value)


def test_enforce_client_authz_can_be_turned_off() -> None:
    assert (
        Settings.from_env({**BASE, "LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ": "false"}).enforce_client_authz
        is False
    )


def test_client_secret_never_appears_in_repr() -> None:
    settings = Settings.from_env({**BASE, "AZURE_CLIENT_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(settings)
    assert "azure_client_secret=<set>" in repr(settings)
