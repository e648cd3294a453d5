"""The service's infrastructure (service/infra): the identity's Bicep as checkov's parser reads it, federated
with the chart's service accounts and granted Graph's Application.Read.All; and the API Management policy of
gateway mode, which replaces exactly the identity headers the service reads, after deleting the caller's."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import yaml

from lkps.api.openapi import document
from lkps.settings import Settings
from tests.support.deploy_kit import (
    CHART,
    GRAPH_EXTENSION,
    INFRA,
    POLICY,
    chart_values,
    install_namespace,
    parse_bicep,
)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
NAMED_VALUE = re.compile(r"\{\{([A-Za-z0-9._-]+)\}\}")


@cache
def default_settings() -> Settings:
    return Settings.from_env(
        {
            "LIVEKIT_URL": "wss://livekit.example.com",
            "LIVEKIT_API_KEY": "APIlkps",
            "LIVEKIT_API_SECRET": "s" * 40,
            "LKPS_IDENTITY_MODE": "gateway",
        }
    )


def service_header_fields() -> dict[str, str | tuple[str, ...]]:
    """The gateway header settings (``gateway_*_header`` and ``gateway_*_headers``) at their defaults."""
    settings = default_settings()
    return {
        name: getattr(settings, name)
        for name in type(settings).model_fields
        if name.startswith("gateway_") and name.endswith(("_header", "_headers"))
    }


def headers_the_service_reads() -> set[str]:
    names: set[str] = set()
    for value in service_header_fields().values():
        names |= {value} if isinstance(value, str) else set(value)
    return names


def headers_the_gateway_sets() -> set[str]:
    """One of each: the first profile header is the one the service reads first."""
    names: set[str] = set()
    for value in service_header_fields().values():
        names.add(value if isinstance(value, str) else value[0])
    return names


def secret_header() -> str:
    """The header of the gateway's shared secret: the service's setting, which the chart's default matches."""
    header: str = default_settings().gateway_secret_header
    assert chart_values()["identity"]["gateway"]["secretHeader"] == header
    return header


@cache
def policy_root() -> ElementTree.Element:
    # our own file, parsed to prove it is well-formed XML
    return ElementTree.parse(POLICY).getroot()  # noqa: S314


def in_order(
    element: ElementTree.Element, inside_response: bool = False
) -> Iterator[tuple[ElementTree.Element, bool]]:
    """Every element in document order, with whether it sits in a <return-response> (sent to the caller)."""
    for child in element:
        yield child, inside_response
        yield from in_order(child, inside_response or child.tag == "return-response")


def request_set_headers() -> list[ElementTree.Element]:
    return [e for e, to_caller in in_order(policy_root()) if e.tag == "set-header" and not to_caller]


def test_policy_is_a_well_formed_fragment() -> None:
    root = policy_root()

    assert root.tag == "fragment"
    assert request_set_headers()


def test_policy_deletes_every_identity_header_before_setting_any() -> None:
    order = request_set_headers()
    deletes = {e.get("name"): i for i, e in enumerate(order) if e.get("exists-action") == "delete"}
    sets = [(i, e) for i, e in enumerate(order) if e.get("exists-action") != "delete"]
    first_set = min(i for i, _ in sets)

    assert all(e.get("exists-action") == "override" for _, e in sets), "append would keep the caller's copy"
    assert all(i < first_set for i in deletes.values()), "every delete comes before the first set"
    for i, element in sets:
        assert deletes.get(element.get("name"), i) < i, f"{element.get('name')} is set without being deleted"


def test_policy_names_exactly_the_headers_the_service_reads() -> None:
    order = request_set_headers()
    deleted = {str(e.get("name")) for e in order if e.get("exists-action") == "delete"}
    written = {str(e.get("name")) for e in order if e.get("exists-action") == "override"}
    identity = headers_the_service_reads()

    # client-id, user-id, x-user-email, user-profile, x-user-profile: read from lkps.settings, not listed here
    assert len(identity) >= 5
    assert deleted == identity | {secret_header()}
    assert written == headers_the_gateway_sets() | {secret_header()}


def value_text(element: ElementTree.Element) -> str:
    value = element.find("value")
    assert value is not None, f"set-header {element.get('name')} has no value"
    assert value.text, f"set-header {element.get('name')} has an empty value"
    return value.text


def test_identity_comes_from_the_validated_token_and_the_secret_from_a_named_value() -> None:
    root = policy_root()
    everything = [e for e, _ in in_order(root)]
    validators = [e for e in everything if e.tag in {"validate-jwt", "validate-azure-ad-token"}]
    order = request_set_headers()
    written = [e for e in order if e.get("exists-action") == "override"]

    assert len(validators) == 1
    (validator,) = validators
    assert everything.index(validator) < everything.index(order[0]), "validate before touching headers"
    token = validator.get("output-token-variable-name")
    assert token
    assert validator.get("failed-validation-httpcode") == "401"
    for element in written:
        if element.get("name") == secret_header():
            assert NAMED_VALUE.fullmatch(value_text(element).strip())
        else:
            assert f'context.Variables["{token}"]' in value_text(element) or "lkps-email" in value_text(
                element
            )
    audiences = [a.text for a in validator.iter("audience")]
    assert audiences == ["{{lkps-platform-app-id}}", "api://{{lkps-platform-app-id}}"]


def test_policy_requires_the_app_role_of_each_operation() -> None:
    settings = default_settings()
    paths = set(document()["paths"])
    role = next(
        e for e, _ in in_order(policy_root()) if e.tag == "set-variable" and e.get("name") == "lkps-role"
    )
    expression = str(role.get("value"))
    checked = dict(re.findall(r'EndsWith\("([^"]+)"\) \? "([^"]+)"', expression))

    assert checked == {
        "/api/agent/register": settings.entra_register_role,
        "/api/session/start": settings.entra_session_role,
    }
    assert set(checked) <= paths
    assert expression.rstrip(")").endswith(': ""'), "any other operation gets no role, so it is refused"


def test_apim_bicep_creates_every_named_value_the_policy_uses_and_loads_this_file() -> None:
    apim = parse_bicep(INFRA / "apim.bicep")
    resources = apim["resources"]
    named = {
        r["config"]["name"]
        for r in resources.values()
        if r["type"] == "Microsoft.ApiManagement/service/namedValues"
    }
    (fragment,) = [
        r for r in resources.values() if r["type"] == "Microsoft.ApiManagement/service/policyFragments"
    ]
    loaded = fragment["config"]["properties"]["value"]["function"]["parameters"]["file_path"]
    used = set(NAMED_VALUE.findall(POLICY.read_text(encoding="utf-8")))
    secret = next(r for r in resources.values() if r["config"].get("name") == "lkps-gateway-shared-secret")

    assert used == named
    assert INFRA / loaded == POLICY
    assert fragment["config"]["properties"]["format"] == "rawxml"
    assert f'fragment-id="{fragment["config"]["name"]}"' in POLICY.read_text(encoding="utf-8")
    assert f'fragment-id="{fragment["config"]["name"]}"' in (INFRA / "README.md").read_text(encoding="utf-8")
    assert secret["config"]["properties"]["secret"] is True
    assert "keyVault" in secret["config"]["properties"]


@cache
def main_bicep() -> dict[str, Any]:
    return parse_bicep(INFRA / "main.bicep")


def default(parsed: dict[str, Any], param: str) -> Any:
    return parsed["parameters"][param]["default"]


def subject(template: str, parsed: dict[str, Any]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: str(default(parsed, m.group(1))), template)


def test_federated_credentials_name_the_charts_service_accounts() -> None:
    bicep = main_bicep()
    values = chart_values()
    variables = {name: v["value"] for name, v in bicep["variables"].items() if "value" in v}
    resources = bicep["resources"]
    service = resources["federatedCredential"]["config"]
    migration = resources["migrationFederatedCredential"]["config"]
    account = values["serviceAccount"]["name"]
    migrate_account = values["migration"]["serviceAccountName"]

    assert default(bicep, "namespace") == install_namespace()
    assert (
        subject(variables["federationSubject"], bicep)
        == f"system:serviceaccount:{install_namespace()}:{account}"
    )
    assert subject(variables["migrationFederationSubject"], bicep) == (
        f"system:serviceaccount:{install_namespace()}:{migrate_account}"
    )
    assert variables["federationAudience"] == "api://AzureADTokenExchange"
    assert service["properties"] == {
        "issuer": "aksOidcIssuerUrl",
        "subject": "federationSubject",
        "audiences": ["federationAudience"],
    }
    # the migration's account needs the identity only to read the database secret from Key Vault
    assert migration["condition"] == "useKeyVault"
    assert migration["config"]["properties"]["subject"] == "migrationFederationSubject"
    # Azure refuses concurrent writes of one identity's federated credentials
    assert migration["config"]["dependsOn"] == ["federatedCredential"]


def test_graph_application_read_all_is_granted_to_the_identity() -> None:
    bicep = main_bicep()
    module = bicep["modules"]["graphPermission"]
    graph = parse_bicep(INFRA / "graph-permission.bicep")
    resources = graph["resources"]
    variables = {name: v["value"] for name, v in graph["variables"].items()}
    (sp,) = [r for r in resources.values() if r["type"] == "Microsoft.Graph/servicePrincipals"]
    (grant,) = [r for r in resources.values() if r["type"] == "Microsoft.Graph/appRoleAssignedTo"]
    sp_name = next(name for name, r in resources.items() if r is sp)
    role_lookup = json.dumps(grant["config"]["appRoleId"])

    assert module["detail"]["path"] == "graph-permission.bicep"
    assert module["config"]["config"]["params"] == {"principalId": "principalId"}
    assert sp["existing"] is True
    assert sp["api_version"] == grant["api_version"] == "v1.0"
    assert variables[sp["config"]["appId"]] == GRAPH_APP_ID
    assert grant["config"]["principalId"] == "principalId"
    assert grant["config"]["resourceId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": sp_name, "operand_2": "id"}}
    }
    # the role ID is looked up by value on Graph's service principal
    assert '"filter"' in role_lookup
    assert '"appRoles"' in role_lookup
    assert '"permission"' in role_lookup
    assert variables["permission"] == "Application.Read.All"


def test_graph_extension_is_declared_and_configured() -> None:
    source = (INFRA / "graph-permission.bicep").read_text(encoding="utf-8")
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    statements = [line for line in source.splitlines() if line.strip() and not line.startswith("//")]

    assert statements[0] == GRAPH_EXTENSION
    registry = config["extensions"][GRAPH_EXTENSION.split()[1]]
    assert re.fullmatch(
        r"br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:\d+\.\d+\.\d+", registry
    )
    assert GRAPH_EXTENSION not in (INFRA / "main.bicep").read_text(encoding="utf-8")


def test_key_vault_access_is_per_secret_and_matches_the_charts_secret_names() -> None:
    bicep = main_bicep()
    objects = chart_values()["secrets"]["keyVault"]["objects"]
    readers = bicep["resources"]["secretReaders"]["config"]
    variables = {name: v["value"] for name, v in bicep["variables"].items() if "value" in v}
    role = readers["config"]["properties"]["roleDefinitionId"]["function"]["parameters"]

    assert default(bicep, "keyVaultSecretNames") == [
        objects["livekitApiKey"],
        objects["livekitApiSecret"],
        objects["databaseUrl"],
    ]
    assert readers["loop_type"]["detail"]["array_name"] == "keyVaultSecretNames"
    assert readers["config"]["scope"]["operator"]["operands"]["operand_1"] == "vaultSecrets"
    assert variables[role["resource_name_1"]] == KEY_VAULT_SECRETS_USER
    assert readers["config"]["properties"]["principalType"] == "ServicePrincipal"


def bicepparam(name: str) -> dict[str, str]:
    text = (INFRA / name).read_text(encoding="utf-8")
    assert text.startswith("using './main.bicep'\n")
    return dict(re.findall(r"^param (\w+) = '([^']*)'$", text, re.MULTILINE))


@pytest.mark.parametrize("environment", ["nonprod", "prod"])
def test_parameter_files_set_known_parameters_and_match_the_charts_secret_source(environment: str) -> None:
    params = bicepparam(f"{environment}.bicepparam")
    chart = yaml.safe_load((CHART / f"values-{environment}.yaml").read_text(encoding="utf-8"))
    secrets = chart["secrets"]

    assert set(params) <= set(main_bicep()["parameters"])
    assert params["aksOidcIssuerUrl"].startswith("https://")
    assert params["identityName"].endswith(environment)
    if secrets["source"] == "keyVault":
        assert params["keyVaultName"] == secrets["keyVault"]["name"]
    else:
        assert params["keyVaultName"] == ""
