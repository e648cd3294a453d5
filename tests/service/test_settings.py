"""Settings come from the environment, once, and every problem names its variable and the fix."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"LKPS_GRAPH_CLIENT_ID": "graph-app"},
            "LKPS_GRAPH_CLIENT_SECRET is not set but LKPS_GRAPH_CLIENT_ID is: the two must be set together;"
            " set both for a client secret, or neither for managed/workload identity",
        ),
        (
            {"LKPS_GRAPH_CLIENT_SECRET": "graph-secret-value"},
            "LKPS_GRAPH_CLIENT_SECRET is set but LKPS_GRAPH_CLIENT_ID is not: the two must be set together;"
            " set both for a client secret, or neither for managed/workload identity",
        ),
    ],
)
def test_graph_client_id_and_secret_are_set_together(given: dict[str, str], expected: str) -> None:
    assert problems(minimal(**given)) == [expected]


def test_a_graph_client_secret_needs_a_tenant_and_defaults_to_the_entra_one() -> None:
    graph = {"LKPS_GRAPH_CLIENT_ID": "g", "LKPS_GRAPH_CLIENT_SECRET": "graph-secret-value"}
    assert Settings.from_env(minimal(**graph)).graph_tenant_id == TENANT
    gateway = minimal(LKPS_IDENTITY_MODE="gateway", LKPS_ENTRA_TENANT_ID="<unset>", **graph)
    assert problems(gateway) == [
        "LKPS_GRAPH_TENANT_ID is not set: a Graph client secret needs its tenant;"
        " set it or LKPS_ENTRA_TENANT_ID"
    ]


@pytest.mark.parametrize("spelling", ["1", "true", "YES", "On"])
def test_booleans_take_the_documented_true_spellings(spelling: str) -> None:
    assert Settings.from_env(minimal(LKPS_MIGRATE_ON_START=spelling)).migrate_on_start is True


@pytest.mark.parametrize("spelling", ["0", "false", "No", "OFF"])
def test_booleans_take_the_documented_false_spellings(spelling: str) -> None:
    assert Settings.from_env(minimal(LKPS_MIGRATE_ON_START=spelling)).migrate_on_start is False


@pytest.mark.parametrize("spelling", ["t", "y", "enabled", "2"])
def test_booleans_refuse_other_spellings(spelling: str) -> None:
    assert problems(minimal(LKPS_MIGRATE_ON_START=spelling)) == [
        f"LKPS_MIGRATE_ON_START={spelling!r} is not a boolean: set it to true or false"
    ]


def test_lists_are_comma_separated_trimmed_and_headers_lower_cased() -> None:
    settings = Settings.from_env(
        minimal(
            LKPS_ENTRA_CWID_CLAIMS=" employeeid , ,oid ",
            LKPS_GATEWAY_PROFILE_HEADERS="X-Profile, X-Other",
            LKPS_GATEWAY_EMAIL_HEADER="X-Mail",
            LKPS_LOG_LEVEL="debug",
            LKPS_IDENTITY_MODE="Entra",
        )
    )
    assert settings.entra_cwid_claims == ("employeeid", "oid")
    assert settings.gateway_profile_headers == ("x-profile", "x-other")
    assert settings.gateway_email_header == "x-mail"
    assert (settings.log_level, settings.identity_mode) == ("DEBUG", "entra")


def test_an_empty_role_disables_its_check_while_other_empty_values_count_as_unset() -> None:
    settings = Settings.from_env(
        minimal(LKPS_ENTRA_REGISTER_ROLE="", LKPS_GRAPH_URL=" ", LKPS_AGENT_TOKEN_TTL="")
    )
    assert settings.entra_register_role == ""
    assert settings.entra_session_role == "Session.Start"
    assert settings.graph_url == "https://graph.microsoft.com/v1.0"
    assert settings.agent_token_ttl == 3600


def test_explicit_issuers_and_health_url_replace_the_derived_ones() -> None:
    settings = Settings.from_env(
        minimal(LKPS_ENTRA_ISSUERS="https://issuer.example/a/", LKPS_LIVEKIT_HEALTH_URL="http://lk:7880/")
    )
    assert settings.entra_issuers == ("https://issuer.example/a/",)
    assert settings.livekit_health_url == "http://lk:7880"


def test_a_ca_file_that_exists_is_kept(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    assert Settings.from_env(minimal(SSL_CERT_FILE=str(bundle))).ca_file == str(bundle)


def test_numbers_name_their_range_and_unit() -> None:
    assert problems(minimal(LKPS_GRAPH_TIMEOUT="0", LKPS_AUDIT_BATCH_SIZE="many")) == [
        "LKPS_GRAPH_TIMEOUT='0' is out of range: set it to a number of seconds between 0.1 and 60",
        "LKPS_AUDIT_BATCH_SIZE='many' is not an integer:"
        " set it to an integer between 1 and 10000 or unset it",
    ]


def test_the_database_password_never_appears_in_errors_or_redacted_output() -> None:
    found = problems(minimal(LKPS_DATABASE_URL="mysql://lkps:db-password@db/lkps"))
    assert found == [
        "LKPS_DATABASE_URL uses 'mysql': use postgresql://user@host/db or sqlite:///path/to/file.db"
    ]
    settings = Settings.from_env(minimal(LKPS_DATABASE_URL="postgresql://lkps:db-password@db/lkps"))
    assert settings.redacted()["database_url"] == "postgresql+asyncpg://lkps:***@db/lkps"


def test_a_settings_error_carries_no_validation_error_holding_the_inputs() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(minimal(LIVEKIT_API_SECRET="tiny-secret", LKPS_AGENT_TOKEN_TTL="x"))
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None
    assert "tiny-secret" not in str(raised.value)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(minimal())
    with pytest.raises(ValueError, match="frozen"):
        settings.agent_token_ttl = 5  # type: ignore[misc]


def test_a_misspelt_lkps_variable_is_named_with_the_closest_setting() -> None:
    env = minimal(LKPS_GRAPH_CACHE_TLL="60", LKPS_NOT_A_THING="1")
    Settings.from_env(env)  # ignored, not refused: a newer deployment may carry a setting this image lacks
    assert Settings.unknown_variables(env) == [
        "LKPS_GRAPH_CACHE_TLL is set but is not a setting of the platform service and is ignored:"
        " did you mean LKPS_GRAPH_CACHE_TTL?",
        "LKPS_NOT_A_THING is set but is not a setting of the platform service and is ignored:"
        " remove it or check the spelling",
    ]


def test_a_typo_that_leaves_a_required_variable_unset_is_explained_in_the_same_error() -> None:
    found = problems(minimal(LKPS_ENTRA_AUDIENCE="<unset>", LKPS_ENTRA_AUDIENCES="app-id"))
    assert found[0].startswith("LKPS_ENTRA_AUDIENCE is not set: list the platform app's client ID")
    assert found[1] == (
        "LKPS_ENTRA_AUDIENCES is set but is not a setting of the platform service and is ignored:"
        " did you mean LKPS_ENTRA_AUDIENCE?"
    )


def test_the_settings_read_exactly_their_declared_variables() -> None:
    asked: list[str] = []

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            asked.append(key)
            return super().get(key, default)

    Settings.from_env(Recording(minimal()))
    assert asked == list(Settings.variables().values())
    assert len(set(asked)) == len(asked)
