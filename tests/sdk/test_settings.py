"""Settings come from the environment in one place, and every problem names the variable and the fix."""

from __future__ import annotations

import logging

import pytest

from livekit_platform_sdk.settings import Settings, SettingsError

BASE = {"LIVEKIT_PLATFORM_URL": "https://platform.example.com", "LIVEKIT_PLATFORM_SCOPE": "api://p/.default"}


def test_defaults_enforce_client_authz_and_renew_five_minutes_before_expiry() -> None:
    settings = Settings.from_env(BASE)
    assert settings.enforce_client_authz is True
    assert settings.renew_margin == 300
    assert settings.readiness_port == 8082
    assert settings.metrics_port == 0
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


def test_every_problem_is_reported_at_once_in_declaration_order() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(
            {
                "LIVEKIT_PLATFORM_URL": "ftp://platform.example.com",
                "LIVEKIT_PLATFORM_HTTP_TIMEOUT": "0",
                "LIVEKIT_PLATFORM_REGISTER_ATTEMPTS": "many",
            }
        )
    assert error.value.problems == [
        "LIVEKIT_PLATFORM_URL='ftp://platform.example.com' is not an http(s) URL:"
        " set it to a URL like https://host",
        "LIVEKIT_PLATFORM_SCOPE is not set: set it to the Entra scope of the platform's app registration,"
        " e.g. api://<platform-app-id>/.default",
        "LIVEKIT_PLATFORM_HTTP_TIMEOUT='0' is out of range: set it to a number of seconds at least 0.1",
        "LIVEKIT_PLATFORM_REGISTER_ATTEMPTS='many' is not an integer: set it to an integer at least 1"
        " or unset it",
    ]
    assert str(error.value).startswith("livekit-platform-sdk is not configured correctly:\n  - ")


@pytest.mark.parametrize(("spelling", "meaning"), [("1", True), ("YES", True), ("on", True), ("Off", False)])
def test_booleans_take_the_documented_spellings(spelling: str, meaning: bool) -> None:
    settings = Settings.from_env({**BASE, "LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ": spelling})
    assert settings.enforce_client_authz is meaning


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({**BASE, "LIVEKIT_PLATFORM_RENEW_MARGIN": "  ", "AZURE_CLIENT_SECRET": ""})
    assert settings.renew_margin == 300
    assert settings.azure_client_secret is None


def test_values_in_code_are_checked_like_the_environment() -> None:
    with pytest.raises(SettingsError) as error:
        Settings(platform_url="platform.example.com", scope="api://p/.default", readiness_port=-1)
    assert [p.split(" ", 1)[0] for p in error.value.problems] == [
        "LIVEKIT_PLATFORM_URL='platform.example.com'",
        "LIVEKIT_PLATFORM_READINESS_PORT=-1",
    ]
    with pytest.raises(SettingsError, match="scope_typo is not a setting"):
        Settings(platform_url="https://p.example.com", scope="api://p/.default", scope_typo="x")


def test_the_client_secret_is_kept_but_never_shown() -> None:
    settings = Settings.from_env({**BASE, "AZURE_CLIENT_SECRET": "s3cr3t-value"})
    assert settings.azure_client_secret is not None
    assert settings.azure_client_secret.get_secret_value() == "s3cr3t-value"
    for shown in (str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        assert "s3cr3t-value" not in shown
    assert "azure_client_secret=<unset>" in repr(Settings.from_env(BASE))


def test_a_misspelt_platform_variable_is_logged_with_the_setting_meant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="livekit_platform_sdk"):
        settings = Settings.from_env({**BASE, "LIVEKIT_PLATFORM_RENEW_MARGN": "60"})
    assert settings.renew_margin == 300
    assert caplog.messages == [
        "LIVEKIT_PLATFORM_RENEW_MARGN is set but is not a setting of livekit-platform-sdk and is ignored:"
        " did you mean LIVEKIT_PLATFORM_RENEW_MARGIN?"
    ]


def test_a_typo_that_leaves_a_required_variable_unset_is_explained_in_the_same_error() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(
            {"LIVEKIT_PLATFORM_URL": "https://p.example.com", "LIVEKIT_PLATFORM_SCOEP": "api://p"}
        )
    assert error.value.problems[-1] == (
        "LIVEKIT_PLATFORM_SCOEP is set but is not a setting of livekit-platform-sdk and is ignored:"
        " did you mean LIVEKIT_PLATFORM_SCOPE?"
    )


def test_the_settings_read_exactly_their_declared_variables() -> None:
    asked: list[str] = []

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            asked.append(key)
            return super().get(key, default)

    Settings.from_env(Recording(BASE))
    assert asked == list(Settings.variables().values())
    assert "LIVEKIT_API_KEY" not in asked


@pytest.mark.parametrize(
    "url",
    [
        "http://platform.example.com",
        "http://10.0.0.5:8080",
        "http://[2001:db8::1]",
        "http://127.0.0.1.nip.io",
    ],
)
def test_plain_http_to_another_machine_is_refused_naming_the_variable_and_the_fix(url: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**BASE, "LIVEKIT_PLATFORM_URL": url})
    (problem,) = error.value.problems
    host = url.removeprefix("http://")
    assert problem.startswith(f"LIVEKIT_PLATFORM_URL={url!r} uses http:// to ")
    assert "would cross the network unencrypted" in problem
    assert f"Set it to https://{host}" in problem


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:9", "http://127.1.2.3"]
)
def test_plain_http_to_this_machine_is_accepted_for_local_development(url: str) -> None:
    assert Settings.from_env({**BASE, "LIVEKIT_PLATFORM_URL": url}).platform_url == url


def test_credentials_in_the_url_are_refused_without_being_shown() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(
            {**BASE, "LIVEKIT_PLATFORM_URL": "https://agent:hunter2-secret@platform.example.com"}
        )
    assert "hunter2" not in str(error.value)
    assert "agent:" not in str(error.value)
    assert error.value.problems == [
        "LIVEKIT_PLATFORM_URL='https://<hidden>@platform.example.com' holds a user name or password: remove"
        " the `user:password@` part (the platform authenticates the agent by its Entra token)"
    ]


def test_a_query_or_fragment_in_the_url_is_refused() -> None:
    with pytest.raises(SettingsError, match="has a query or fragment: set it to the base URL"):
        Settings.from_env({**BASE, "LIVEKIT_PLATFORM_URL": "https://platform.example.com/?token=x"})


def test_the_metrics_port_is_a_port_or_zero_for_off() -> None:
    assert Settings.from_env({**BASE, "LIVEKIT_PLATFORM_METRICS_PORT": "9100"}).metrics_port == 9100
    with pytest.raises(SettingsError, match="LIVEKIT_PLATFORM_METRICS_PORT='-1' is out of range"):
        Settings.from_env({**BASE, "LIVEKIT_PLATFORM_METRICS_PORT": "-1"})
