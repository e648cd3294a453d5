"""Settings come from the environment, once, and every problem names its variable and the fix."""

from __future__ import annotations

import pytest

from lkps.settings import Settings, SettingsError

TENANT = "11111111-2222-4333-8444-555555555555"
SECRET = "a-livekit-secret-that-is-long-enough-123"


def minimal(**overrides: str) -> dict[str, str]:
    env = {
        "LIVEKIT_URL": "wss://livekit.example.com",
        "LIVEKIT_API_KEY": "APIkey",
        "LIVEKIT_API_SECRET": SECRET,
        "LKPS_ENTRA_TENANT_ID": TENANT,
        "LKPS_ENTRA_AUDIENCE": "app-id, api://app-id",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    return raised.value.problems


def test_defaults_are_entra_mode_sqlite_public_cloud_and_graph_v1() -> None:
    settings = Settings.from_env(minimal())
    assert settings.identity_mode == "entra"
    assert settings.database_url == "sqlite+aiosqlite:///./lkps.db"
    assert settings.entra_authority == "https://login.microsoftonline.com"
    assert settings.graph_url == "https://graph.microsoft.com/v1.0"
    assert settings.entra_audiences == ("app-id", "api://app-id")
    assert settings.entra_issuers == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0",
        f"https://sts.windows.net/{TENANT}/",
    )
    assert (settings.entra_register_role, settings.entra_session_role) == ("Agent.Register", "Session.Start")
    assert settings.agent_token_ttl == 3600
    assert settings.livekit_health_url == "https://livekit.example.com/"
    assert settings.otlp_endpoint is None


def test_a_missing_livekit_secret_names_the_variable() -> None:
    found = problems(minimal(LIVEKIT_API_SECRET="<unset>"))
    assert len(found) == 1
    assert found[0].startswith("LIVEKIT_API_SECRET is not set")


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"LKPS_IDENTITY_MODE": "entra", "LKPS_AGENT_TOKEN_TTL": "ten"})
    joined = "\n".join(found)
    for variable in (
        "LIVEKIT_URL",
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
        "LKPS_ENTRA_TENANT_ID",
        "LKPS_ENTRA_AUDIENCE",
        "LKPS_AGENT_TOKEN_TTL",
    ):
        assert variable in joined


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LIVEKIT_URL", "livekit.example.com", "URL"),
        ("LIVEKIT_API_SECRET", "short", "shorter than 32 bytes"),
        ("LKPS_IDENTITY_MODE", "oauth", "entra, gateway"),
        ("LKPS_ENTRA_TENANT_ID", "contoso", "GUID"),
        ("LKPS_AGENT_TOKEN_TTL", "5", "out of range"),
        ("LKPS_DATABASE_URL", "mysql://db/lkps", "postgresql://"),
        ("LKPS_MIGRATE_ON_START", "maybe", "boolean"),
        ("LKPS_GRAPH_CLIENT_ID", "graph-app", "must be set together"),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem", "does not exist"),
    ],
)
def test_invalid_values_are_rejected_with_the_fix(variable: str, value: str, says: str) -> None:
    found = problems(minimal(**{variable: value}))
    assert any(p.startswith(variable) and says in p for p in found), found


def test_gateway_mode_needs_no_entra_settings() -> None:
    settings = Settings.from_env(
        minimal(LKPS_IDENTITY_MODE="gateway", LKPS_ENTRA_TENANT_ID="<unset>", LKPS_ENTRA_AUDIENCE="<unset>")
    )
    assert settings.identity_mode == "gateway"
    assert settings.gateway_client_id_header == "client-id"


def test_plain_database_urls_get_the_async_driver() -> None:
    assert Settings.from_env(minimal(LKPS_DATABASE_URL="postgresql://u@db/lkps")).database_url == (
        "postgresql+asyncpg://u@db/lkps"
    )
    assert Settings.from_env(minimal(LKPS_DATABASE_URL="postgres://u@db/lkps")).database_url == (
        "postgresql+asyncpg://u@db/lkps"
    )
    assert Settings.from_env(minimal(LKPS_DATABASE_URL="sqlite:////tmp/x.db")).database_url == (
        "sqlite+aiosqlite:////tmp/x.db"
    )


def test_secrets_stay_out_of_repr_and_redacted_output() -> None:
    settings = Settings.from_env(
        minimal(LKPS_GRAPH_CLIENT_ID="g", LKPS_GRAPH_CLIENT_SECRET="graph-secret-value")
    )
    assert SECRET not in repr(settings)
    assert "graph-secret-value" not in repr(settings)
    redacted = settings.redacted()
    assert redacted["livekit_api_secret"] == "<set>"
    assert redacted["graph_client_secret"] == "<set>"


def test_a_secret_never_appears_in_an_error_message() -> None:
    found = problems(minimal(LIVEKIT_API_SECRET="tiny-secret", LIVEKIT_URL="<unset>"))
    assert all("tiny-secret" not in p for p in found)
