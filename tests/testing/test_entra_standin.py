"""The Entra ID / Graph / IMDS stand-in, proven through the real azure-identity credentials."""

from __future__ import annotations

import json
import os
import select
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    ClientSecretCredential,
    CredentialUnavailableError,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.identity import aio as identity_aio
from cryptography.hazmat.primitives.asymmetric import rsa

from livekit_platform_testing.entra import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    GRAPH_SCOPE,
    AppRegistration,
    EntraStandIn,
)

_AZURE_ENV_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")


@pytest.fixture(autouse=True)
def clean_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient Azure configuration leaks into a test (credentials read these at construction)."""
    for name in list(os.environ):
        if name.startswith(_AZURE_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def trust_standin(monkeypatch: pytest.MonkeyPatch, entra_standin: EntraStandIn) -> None:
    """The sync (requests) transport reads REQUESTS_CA_BUNDLE per request; this machine presets it."""
    for name, value in entra_standin.ca_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def resource(entra_standin: EntraStandIn) -> AppRegistration:
    return entra_standin.register_app(
        display_name="platform", app_roles=["agent", "client"], exposed_scopes=["access_as_client"]
    )


@pytest.fixture
def client(entra_standin: EntraStandIn) -> AppRegistration:
    return entra_standin.register_app(display_name="agent")


def _scope(app: AppRegistration) -> str:
    return f"api://{app.app_id}/.default"


def _secret_credential(entra_standin: EntraStandIn, app_id: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(
        entra_standin.tenant_id,
        app_id,
        secret,
        authority=entra_standin.authority_host,
        disable_instance_discovery=True,
    )


# -- client secret -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("trust_standin")
def test_client_secret_credential_gets_v2_token_with_roles(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)
    entra_standin.assign_role(client.app_id, resource.app_id, "agent")

    before = int(time.time())
    token = _secret_credential(entra_standin, client.app_id, secret).get_token(_scope(resource))
    after = int(time.time())

    claims = entra_standin.verify(token.token, audience=resource.app_id)
    assert claims["iss"] == entra_standin.issuer == f"{entra_standin.url}/{entra_standin.tenant_id}/v2.0"
    assert claims["azp"] == client.app_id
    assert claims["azpacr"] == "1"
    assert claims["oid"] == claims["sub"] == client.service_principal_id
    assert claims["tid"] == entra_standin.tenant_id
    assert claims["roles"] == ["agent"]
    assert claims["ver"] == "2.0"
    assert claims["exp"] - claims["iat"] == entra_standin.token_lifetime
    assert jwt.get_unverified_header(token.token)["kid"] == entra_standin.jwks()["keys"][0]["kid"]
    # The client derives expires_on from expires_in on its own clock, so it may fall in another second than
    # the stand-in's iat: both lie within the call.
    assert before + entra_standin.token_lifetime <= token.expires_on <= after + entra_standin.token_lifetime
    assert before + entra_standin.token_lifetime <= claims["exp"] <= after + entra_standin.token_lifetime


async def test_async_client_secret_credential_gets_token(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)
    # aiohttp builds its default TLS context when imported, so SSL_CERT_FILE set now would be ignored.
    async with identity_aio.ClientSecretCredential(
        entra_standin.tenant_id,
        client.app_id,
        secret,
        authority=entra_standin.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(entra_standin.ca_file),
    ) as credential:
        token = await credential.get_token(_scope(resource))

    claims = entra_standin.verify(token.token, audience=resource.app_id)
    assert claims["azp"] == client.app_id
    assert "roles" not in claims  # Entra omits the claim when the client holds no role


@pytest.mark.usefixtures("trust_standin")
def test_v1_resource_gets_identifier_uri_audience_and_appid(
    entra_standin: EntraStandIn, client: AppRegistration
) -> None:
    v1 = entra_standin.register_app(
        identifier_uri=f"api://legacy-{uuid.uuid4()}", access_token_version=1, app_roles=["r"]
    )
    secret = entra_standin.add_secret(client.app_id)
    entra_standin.assign_role(client.app_id, v1.app_id, "r")

    token = _secret_credential(entra_standin, client.app_id, secret).get_token(
        f"{v1.identifier_uris[0]}/.default"
    )

    claims = entra_standin.verify(token.token, audience=v1.identifier_uris[0])
    assert claims["iss"] == entra_standin.v1_issuer
    assert claims["appid"] == client.app_id
    assert claims["ver"] == "1.0"
    assert claims["roles"] == ["r"]
    assert "azp" not in claims


@pytest.mark.usefixtures("trust_standin")
def test_wrong_secret_fails_with_aadsts7000215_and_is_recorded_without_the_secret(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    entra_standin.add_secret(client.app_id)
    wrong = "not-the-secret-" + uuid.uuid4().hex

    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        _secret_credential(entra_standin, client.app_id, wrong).get_token(_scope(resource))

    [record] = [r for r in entra_standin.token_requests if r.client_id == client.app_id]
    assert (record.outcome, record.error, record.error_code) == ("error", "invalid_client", 7000215)
    assert record.client_auth == "client_secret"
    assert wrong not in repr(entra_standin.token_requests)


@pytest.mark.usefixtures("trust_standin")
def test_unknown_client_fails_with_aadsts700016(
    entra_standin: EntraStandIn, resource: AppRegistration
) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        _secret_credential(entra_standin, str(uuid.uuid4()), "whatever").get_token(_scope(resource))


@pytest.mark.usefixtures("trust_standin")
def test_disabled_app_fails_with_aadsts7000112_until_enabled(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)
    entra_standin.disable_app(client.app_id)

    with pytest.raises(ClientAuthenticationError, match="AADSTS7000112"):
        _secret_credential(entra_standin, client.app_id, secret).get_token(_scope(resource))

    entra_standin.enable_app(client.app_id)
    assert _secret_credential(entra_standin, client.app_id, secret).get_token(_scope(resource)).token


@pytest.mark.usefixtures("trust_standin")
def test_removed_role_is_missing_from_the_next_token(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)
    entra_standin.assign_role(client.app_id, resource.app_id, "agent")
    entra_standin.assign_role(client.app_id, resource.app_id, "client")
    first = _secret_credential(entra_standin, client.app_id, secret).get_token(_scope(resource))

    entra_standin.remove_role(client.app_id, resource.app_id, "agent")
    # A new credential: the old one would serve its cached token until it nears expiry.
    second = _secret_credential(entra_standin, client.app_id, secret).get_token(_scope(resource))

    assert entra_standin.verify(first.token, audience=resource.app_id)["roles"] == ["agent", "client"]
    assert entra_standin.verify(second.token, audience=resource.app_id)["roles"] == ["client"]


@pytest.mark.usefixtures("trust_standin")
def test_unknown_resource_fails_with_aadsts500011(
    entra_standin: EntraStandIn, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)

    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        _secret_credential(entra_standin, client.app_id, secret).get_token(
            "api://nobody-registered-this/.default"
        )


@pytest.mark.usefixtures("trust_standin")
def test_scope_without_default_suffix_fails_with_aadsts1002012(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)

    with pytest.raises(ClientAuthenticationError, match="AADSTS1002012"):
        _secret_credential(entra_standin, client.app_id, secret).get_token(
            f"api://{resource.app_id}/access_as_client"
        )


@pytest.mark.usefixtures("trust_standin")
def test_other_tenant_is_not_found(entra_standin: EntraStandIn, client: AppRegistration) -> None:
    secret = entra_standin.add_secret(client.app_id)
    credential = ClientSecretCredential(
        str(uuid.uuid4()),
        client.app_id,
        secret,
        authority=entra_standin.authority_host,
        disable_instance_discovery=True,
    )

    # MSAL reports the 400 from OIDC discovery (AADSTS90002) as an unusable authority.
    with pytest.raises(ClientAuthenticationError, match="Unable to get authority configuration"):
        credential.get_token(GRAPH_SCOPE)


# -- workload identity (federated credentials) ---------------------------------------------------------------


def _workload_identity(
    entra_standin: EntraStandIn, tmp_path: Path, *, subject: str = "system:serviceaccount:agents:echo"
) -> tuple[AppRegistration, Path]:
    identity = entra_standin.add_managed_identity()
    entra_standin.add_federated_credential(
        identity.app_id, issuer=entra_standin.kubernetes_issuer_url, subject=subject
    )
    token_file = entra_standin.write_service_account_token(
        tmp_path / "azure-identity-token", namespace="agents", service_account="echo"
    )
    return identity, token_file


@pytest.mark.usefixtures("trust_standin")
def test_workload_identity_credential_exchanges_projected_token(
    entra_standin: EntraStandIn, resource: AppRegistration, tmp_path: Path
) -> None:
    identity, token_file = _workload_identity(entra_standin, tmp_path)
    entra_standin.assign_role(identity.app_id, resource.app_id, "agent")
    credential = WorkloadIdentityCredential(
        tenant_id=entra_standin.tenant_id,
        client_id=identity.app_id,
        token_file_path=str(token_file),
        authority=entra_standin.authority_host,
    )

    token = credential.get_token(_scope(resource))

    claims = entra_standin.verify(token.token, audience=resource.app_id)
    assert (claims["azp"], claims["azpacr"], claims["roles"]) == (identity.app_id, "2", ["agent"])
    [record] = [r for r in entra_standin.token_requests if r.client_id == identity.app_id]
    assert (record.client_auth, record.outcome) == ("client_assertion", "issued")
    assert token_file.read_text() not in repr(entra_standin.token_requests)


def test_service_account_token_looks_projected(entra_standin: EntraStandIn) -> None:
    token = entra_standin.service_account_token(namespace="agents", service_account="echo", lifetime=600)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == entra_standin.kubernetes_issuer_url
    assert claims["sub"] == "system:serviceaccount:agents:echo"
    assert claims["aud"] == ["api://AzureADTokenExchange"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "echo"
    assert claims["kubernetes.io"]["namespace"] == "agents"


@pytest.mark.usefixtures("trust_standin")
def test_federated_credential_with_wrong_subject_fails_with_aadsts700213(
    entra_standin: EntraStandIn, resource: AppRegistration, tmp_path: Path
) -> None:
    identity, token_file = _workload_identity(
        entra_standin, tmp_path, subject="system:serviceaccount:agents:other"
    )
    credential = WorkloadIdentityCredential(
        tenant_id=entra_standin.tenant_id,
        client_id=identity.app_id,
        token_file_path=str(token_file),
        authority=entra_standin.authority_host,
    )

    with pytest.raises(ClientAuthenticationError, match="AADSTS700213"):
        credential.get_token(_scope(resource))


@pytest.mark.usefixtures("trust_standin")
@pytest.mark.parametrize(
    ("mutation", "code"),
    [
        ("issuer", "AADSTS700211"),
        ("audience", "AADSTS700212"),
        ("expired", "AADSTS700024"),
        ("foreign_key", "AADSTS700027"),
    ],
)
def test_federated_assertion_is_checked_like_entra(
    entra_standin: EntraStandIn, resource: AppRegistration, tmp_path: Path, mutation: str, code: str
) -> None:
    identity = entra_standin.add_managed_identity()
    subject = "system:serviceaccount:agents:echo"
    issuer = (
        "https://127.0.0.1:9/another-cluster" if mutation == "issuer" else entra_standin.kubernetes_issuer_url
    )
    entra_standin.add_federated_credential(identity.app_id, issuer=issuer, subject=subject)
    token_file = tmp_path / "token"
    if mutation == "foreign_key":
        genuine = entra_standin.service_account_token(namespace="agents", service_account="echo")
        claims = jwt.decode(genuine, options={"verify_signature": False})
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = jwt.get_unverified_header(genuine)["kid"]
        token_file.write_text(jwt.encode(claims, forger, algorithm="RS256", headers={"kid": kid}))
    else:
        entra_standin.write_service_account_token(
            token_file,
            namespace="agents",
            service_account="echo",
            audience="api://SomethingElse" if mutation == "audience" else "api://AzureADTokenExchange",
            issued_at=time.time() - 7200 if mutation == "expired" else None,
        )
    credential = WorkloadIdentityCredential(
        tenant_id=entra_standin.tenant_id,
        client_id=identity.app_id,
        token_file_path=str(token_file),
        authority=entra_standin.authority_host,
    )

    with pytest.raises(ClientAuthenticationError, match=code):
        credential.get_token(_scope(resource))


# -- managed identity (IMDS) ---------------------------------------------------------------------------------


def test_managed_identity_credential_uses_pod_identity_host(
    entra_standin: EntraStandIn, resource: AppRegistration, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = entra_standin.add_managed_identity()
    entra_standin.assign_role(identity.app_id, resource.app_id, "agent")
    for name, value in entra_standin.managed_identity_env().items():
        monkeypatch.setenv(name, value)

    token = ManagedIdentityCredential(client_id=identity.app_id).get_token(_scope(resource))

    claims = entra_standin.verify(token.token, audience=resource.app_id)
    assert (claims["azp"], claims["roles"]) == (identity.app_id, ["agent"])
    assert entra_standin.token_requests[-1].endpoint == "imds"


async def test_async_managed_identity_credential_uses_pod_identity_host(
    entra_standin: EntraStandIn, resource: AppRegistration, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = entra_standin.add_managed_identity()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", entra_standin.imds_url)

    async with identity_aio.ManagedIdentityCredential(client_id=identity.app_id) as credential:
        token = await credential.get_token(_scope(resource))

    assert entra_standin.verify(token.token, audience=resource.app_id)["azp"] == identity.app_id


def test_managed_identity_unknown_to_imds_is_unavailable(
    entra_standin: EntraStandIn, resource: AppRegistration, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", entra_standin.imds_url)

    with pytest.raises(CredentialUnavailableError, match="Identity not found"):
        ManagedIdentityCredential(client_id=str(uuid.uuid4())).get_token(_scope(resource))


def test_imds_requires_metadata_header(entra_standin: EntraStandIn, resource: AppRegistration) -> None:
    identity = entra_standin.add_managed_identity()
    params = {
        "api-version": "2018-02-01",
        "resource": f"api://{resource.app_id}",
        "client_id": identity.app_id,
    }
    url = f"{entra_standin.imds_url}/metadata/identity/oauth2/token"

    refused = httpx.get(url, params=params)
    granted = httpx.get(url, params=params, headers={"Metadata": "true"})

    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
    assert granted.status_code == 200
    assert (
        entra_standin.verify(granted.json()["access_token"], audience=resource.app_id)["azp"]
        == identity.app_id
    )


# -- DefaultAzureCredential ----------------------------------------------------------------------------------


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_default_credential_picks_up_workload_identity_env(
    entra_standin: EntraStandIn, resource: AppRegistration, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity, token_file = _workload_identity(entra_standin, tmp_path)
    _set_env(monkeypatch, entra_standin.workload_identity_env(identity.app_id, token_file))

    token = DefaultAzureCredential(exclude_managed_identity_credential=True).get_token(_scope(resource))

    assert entra_standin.verify(token.token, audience=resource.app_id)["azp"] == identity.app_id


async def test_async_default_credential_picks_up_workload_identity_env(
    entra_standin: EntraStandIn, resource: AppRegistration, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity, token_file = _workload_identity(entra_standin, tmp_path)
    _set_env(monkeypatch, entra_standin.workload_identity_env(identity.app_id, token_file))

    async with identity_aio.DefaultAzureCredential(
        exclude_managed_identity_credential=True, connection_verify=str(entra_standin.ca_file)
    ) as credential:
        token = await credential.get_token(_scope(resource))

    assert entra_standin.verify(token.token, audience=resource.app_id)["azp"] == identity.app_id


def test_default_credential_picks_up_service_principal_env(
    entra_standin: EntraStandIn,
    resource: AppRegistration,
    client: AppRegistration,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set_env(
        monkeypatch,
        entra_standin.service_principal_env(client.app_id, entra_standin.add_secret(client.app_id)),
    )

    # The sync path goes through MSAL, which would ask login.microsoftonline.com about an unknown host.
    credential = DefaultAzureCredential(
        exclude_managed_identity_credential=True, disable_instance_discovery=True
    )
    token = credential.get_token(_scope(resource))

    assert entra_standin.verify(token.token, audience=resource.app_id)["azp"] == client.app_id


async def test_async_default_credential_picks_up_service_principal_env(
    entra_standin: EntraStandIn,
    resource: AppRegistration,
    client: AppRegistration,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set_env(
        monkeypatch,
        entra_standin.service_principal_env(client.app_id, entra_standin.add_secret(client.app_id)),
    )

    async with identity_aio.DefaultAzureCredential(
        exclude_managed_identity_credential=True, connection_verify=str(entra_standin.ca_file)
    ) as credential:
        token = await credential.get_token(_scope(resource))

    assert entra_standin.verify(token.token, audience=resource.app_id)["azp"] == client.app_id


def test_default_credential_reaches_standin_imds(
    entra_standin: EntraStandIn, resource: AppRegistration, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = entra_standin.add_managed_identity()
    _set_env(monkeypatch, {**entra_standin.ca_env(), **entra_standin.managed_identity_env(identity.app_id)})
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")

    token = DefaultAzureCredential().get_token(_scope(resource))

    assert entra_standin.verify(token.token, audience=resource.app_id)["azp"] == identity.app_id


# -- Microsoft Graph -----------------------------------------------------------------------------------------


def _graph_get(entra_standin: EntraStandIn, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(verify=entra_standin.tls.client_context()) as http:
        return http.get(f"{entra_standin.graph_url}/{path}", headers=headers)


def _graph_token(entra_standin: EntraStandIn, *, with_role: bool) -> str:
    reader = entra_standin.register_app(display_name="platform service")
    secret = entra_standin.add_secret(reader.app_id)
    if with_role:
        entra_standin.assign_role(reader.app_id, GRAPH_APP_ID, "Application.Read.All")
    return _secret_credential(entra_standin, reader.app_id, secret).get_token(GRAPH_SCOPE).token


@pytest.mark.usefixtures("trust_standin")
def test_graph_returns_api_with_pre_authorized_applications(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    entra_standin.pre_authorize(resource.app_id, client.app_id, ["access_as_client"])
    token = _graph_token(entra_standin, with_role=True)

    response = _graph_get(entra_standin, f"applications(appId='{resource.app_id}')?$select=api", token)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"@odata.context", "api"}
    [scope] = body["api"]["oauth2PermissionScopes"]
    assert (scope["value"], scope["isEnabled"]) == ("access_as_client", True)
    assert scope["id"] == resource.exposed_scopes["access_as_client"]
    assert body["api"]["preAuthorizedApplications"] == [
        {"appId": client.app_id, "delegatedPermissionIds": [scope["id"]]}
    ]
    assert entra_standin.verify(token, audience=GRAPH_RESOURCE)["roles"] == ["Application.Read.All"]
    assert entra_standin.graph_requests[-1].status == 200


def test_graph_without_token_is_401(entra_standin: EntraStandIn, resource: AppRegistration) -> None:
    response = _graph_get(entra_standin, f"applications(appId='{resource.app_id}')", None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


@pytest.mark.usefixtures("trust_standin")
def test_graph_without_role_is_403(entra_standin: EntraStandIn, resource: AppRegistration) -> None:
    response = _graph_get(
        entra_standin,
        f"applications(appId='{resource.app_id}')",
        _graph_token(entra_standin, with_role=False),
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


@pytest.mark.usefixtures("trust_standin")
def test_graph_unknown_app_is_404(entra_standin: EntraStandIn) -> None:
    unknown = str(uuid.uuid4())

    response = _graph_get(
        entra_standin,
        f"applications(appId='{unknown}')?$select=api",
        _graph_token(entra_standin, with_role=True),
    )

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert unknown in error["message"]


@pytest.mark.usefixtures("trust_standin")
def test_graph_rejects_token_for_another_audience(
    entra_standin: EntraStandIn, resource: AppRegistration, client: AppRegistration
) -> None:
    secret = entra_standin.add_secret(client.app_id)
    entra_standin.assign_role(client.app_id, resource.app_id, "agent")
    token = _secret_credential(entra_standin, client.app_id, secret).get_token(_scope(resource)).token

    response = _graph_get(entra_standin, f"applications(appId='{resource.app_id}')", token)

    assert response.status_code == 401


# -- process mode and the admin API --------------------------------------------------------------------------


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"the stand-in printed nothing within {timeout} s")
    return proc.stdout.readline()


def test_process_mode_serves_preloaded_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    platform_id, agent_id, identity_id, tenant_id, secret = (str(uuid.uuid4()) for _ in range(5))
    config: dict[str, Any] = {
        "apps": [
            {"app_id": platform_id, "display_name": "platform", "app_roles": ["agent"]},
            {"app_id": agent_id, "display_name": "agent", "secrets": [secret]},
        ],
        # No issuer: the stand-in's own Kubernetes issuer, whose URL is known only once it listens.
        "managed_identities": [
            {"client_id": identity_id, "federated_credentials": [{"subject": "system:serviceaccount:ns:sa"}]}
        ],
        "role_assignments": [{"client_app_id": agent_id, "resource_app_id": platform_id, "role": "agent"}],
    }
    config_file = tmp_path / "entra.json"
    config_file.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "livekit_platform_testing.entra", "--config", str(config_file),
         "--tenant-id", tenant_id],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        urls = json.loads(_read_line(proc, timeout=30))
        assert urls["tenant_id"] == tenant_id
        assert urls["issuer"] == f"{urls['authority']}/v2.0"
        credential = ClientSecretCredential(
            tenant_id,
            agent_id,
            secret,
            authority=urls["authority_host"],
            disable_instance_discovery=True,
            connection_verify=urls["ca_file"],
        )
        token = credential.get_token(f"api://{platform_id}/.default").token

        keys = jwt.PyJWKClient(urls["jwks_uri"], ssl_context=_ssl_context(urls["ca_file"]))
        claims = jwt.decode(
            token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=platform_id
        )
        assert (claims["iss"], claims["azp"], claims["roles"]) == (urls["issuer"], agent_id, ["agent"])

        with httpx.Client(base_url=urls["admin_url"], verify=_ssl_context(urls["ca_file"])) as admin:
            removed = admin.request(
                "DELETE",
                "/role-assignments",
                json={"client_app_id": agent_id, "resource_app_id": platform_id, "role": "agent"},
            )
            written = admin.post(
                "/kubernetes/service-account-tokens",
                json={"namespace": "ns", "service_account": "sa", "path": str(tmp_path / "sa-token")},
            )
            workload = WorkloadIdentityCredential(
                tenant_id=tenant_id,
                client_id=identity_id,
                token_file_path=written.json()["path"],
                authority=urls["authority_host"],
                connection_verify=urls["ca_file"],
            )
            workload.get_token(f"api://{platform_id}/.default")
            records = admin.get("/token-requests").json()
            unknown = admin.post(f"/apps/{uuid.uuid4()}/disable")
        assert removed.status_code == 204
        assert [(r["client_id"], r["client_auth"], r["outcome"]) for r in records] == [
            (agent_id, "client_secret", "issued"),
            (identity_id, "client_assertion", "issued"),
        ]
        assert unknown.status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(timeout=15)
    assert exit_code == 0


def test_process_mode_rejects_bad_config(tmp_path: Path) -> None:
    config_file = tmp_path / "entra.json"
    config_file.write_text(json.dumps({"apps": [{"app_id": "not-a-guid"}]}))

    result = subprocess.run(
        [sys.executable, "-m", "livekit_platform_testing.entra", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "app_id='not-a-guid' is not a GUID" in result.stderr


def _ssl_context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def test_restart_keeps_urls_keys_and_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    with EntraStandIn() as standin:
        resource = standin.register_app(app_roles=["agent"])
        identity = standin.add_managed_identity()
        before = standin.describe()

        standin.restart()

        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", standin.imds_url)
        token = ManagedIdentityCredential(client_id=identity.app_id).get_token(_scope(resource))
        assert standin.describe() == before
        assert standin.verify(token.token, audience=resource.app_id)["azp"] == identity.app_id
