"""Credential selection against the Entra stand-in, through the real azure-identity async credentials."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from livekit_platform_sdk.identity import (
    AZURE_HTTP_LOGGER,
    AZURE_IDENTITY_LOGGER,
    DEFAULT_CHAIN,
    SERVICE_PRINCIPAL,
    CredentialError,
    PlatformIdentity,
    quiet_azure_http_logging,
    quiet_azure_identity_logging,
)
from livekit_platform_sdk.settings import Settings
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.tenant import REGISTER_ROLE, App, Tenant


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tenant: Tenant) -> Settings:
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIVEKIT_PLATFORM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LIVEKIT_PLATFORM_SCOPE", tenant.scope)
    return Settings.from_env()


async def test_service_principal_is_used_when_client_id_secret_and_tenant_are_set(
    entra_standin: EntraStandIn, tenant: Tenant, agent_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = use_env(
        monkeypatch, entra_standin.service_principal_env(agent_app.app_id, agent_app.secret), tenant
    )
    identity = PlatformIdentity(settings, connection_verify=str(entra_standin.ca_file))
    try:
        token = await identity.get_token()
    finally:
        await identity.close()
    assert identity.way == SERVICE_PRINCIPAL
    claims = entra_standin.verify(token.value, audience=tenant.platform.app_id)
    assert claims["azp"] == agent_app.app_id
    assert REGISTER_ROLE in claims["roles"]
    assert token.app_id == agent_app.app_id


async def test_workload_identity_is_used_through_the_default_chain(
    entra_standin: EntraStandIn, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    workload = tenant.add_workload_agent(
        tmp_path / "token", display_name="workload", service_account="unit", managed_identity=True
    )
    identity_app, token_file = workload.app, workload.token_file
    settings = use_env(
        monkeypatch, entra_standin.workload_identity_env(identity_app.app_id, token_file), tenant
    )
    identity = PlatformIdentity(settings, connection_verify=str(entra_standin.ca_file))
    try:
        token = await identity.get_token()
    finally:
        await identity.close()
    assert identity.way == DEFAULT_CHAIN
    assert entra_standin.verify(token.value, audience=tenant.platform.app_id)["azp"] == identity_app.app_id


async def test_a_rejected_secret_is_reported_for_the_service_principal_without_the_secret(
    entra_standin: EntraStandIn, tenant: Tenant, agent_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-secret-value-0123456789"
    settings = use_env(monkeypatch, entra_standin.service_principal_env(agent_app.app_id, wrong), tenant)
    identity = PlatformIdentity(settings, connection_verify=str(entra_standin.ca_file))
    try:
        with pytest.raises(CredentialError) as error:
            await identity.get_token()
    finally:
        await identity.close()
    assert [way for way, _ in error.value.attempts] == [SERVICE_PRINCIPAL]
    assert "AADSTS" in str(error.value)
    assert wrong not in str(error.value)


def test_azure_http_request_logging_is_quiet_unless_the_application_chose_a_level() -> None:
    http_log = logging.getLogger(AZURE_HTTP_LOGGER)
    saved = http_log.level
    try:
        http_log.setLevel(logging.NOTSET)
        quiet_azure_http_logging()
        assert http_log.level == logging.WARNING
        http_log.setLevel(logging.DEBUG)
        quiet_azure_http_logging()
        assert http_log.level == logging.DEBUG
    finally:
        http_log.setLevel(saved)


def test_azure_identity_failure_logging_is_left_to_the_sdks_redacted_error() -> None:
    identity_log = logging.getLogger(AZURE_IDENTITY_LOGGER)
    saved = identity_log.level
    try:
        identity_log.setLevel(logging.NOTSET)
        quiet_azure_identity_logging()
        assert identity_log.level == logging.ERROR
        identity_log.setLevel(logging.INFO)
        quiet_azure_identity_logging()
        assert identity_log.level == logging.INFO
    finally:
        identity_log.setLevel(saved)
