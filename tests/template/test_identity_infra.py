"""The generated identity can do what the answers ask, for each `agent_identity`.

No Bicep compiler runs here, so consistency is proved instead: the generated `infra/main.bicep`, as
checkov's own parser (pycep) reads it, is loaded object by object into the Entra stand-in (the app
registration, its scope, the pre-authorized clients, the service principal, the federated credential's
issuer/subject/audience, the platform's app role assignment; or the managed identity), every resource it
declares and nothing else. The generated agent then runs on AKS workload identity as its chart configures it
(a projected service-account token, as `demo/` does) against the real platform service (`lkps`, entra mode,
Graph checks on), and clients start sessions: a pre-authorized one gets 200 and one that is not gets 403 when
the agent enforces client authorization; with a managed identity (which cannot) any client with the session
role gets in.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.processes import free_port, wait_for
from demo.run import http_status, install, python_answer
from demo.system import System, SystemOptions
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.tenant import SESSION_ROLE, App, WorkloadIdentity
from lkps.settings import Settings
from tests.support.baking import REQUIRED_ANSWERS, Baked, Baker
from tests.support.checkov import GRAPH_EXTENSION
from tests.support.paths import REPO
from tests.support.tools import tool

CLIENTS = ("3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d", "4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e")
PARSE = """
import json, pathlib, sys
from pycep import BicepParser
text = pathlib.Path(sys.argv[1]).read_text()
text = "\\n".join(line for line in text.splitlines() if line.strip() != sys.argv[2])
print(json.dumps(BicepParser().parse(text=text), default=str))
"""


def parse_bicep(path: Path) -> dict[str, Any]:
    """``path`` as checkov's parser reads it; pycep predates the `extension` statement, so that one line
    (which must be there, before any resource) is left out."""
    statements = [
        line for line in path.read_text().splitlines() if line.strip() and not line.startswith("//")
    ]
    assert statements[0] == GRAPH_EXTENSION, "the Graph extension is declared first"
    python = REPO / ".tools" / "checkov-venv" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make template-tools` (pycep comes with checkov)")
    parsed = subprocess.run(
        [str(python), "-c", PARSE, str(path), GRAPH_EXTENSION], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    result: dict[str, Any] = json.loads(parsed.stdout)
    return result


class Bicep:
    """Evaluates the expressions of a parsed Bicep file for one deployment: parameters (given, else their
    defaults), variables, and the properties of resources deployed so far (``deployed``). Anything it does not
    know fails the test rather than guess."""

    def __init__(self, parsed: dict[str, Any], params: dict[str, Any]) -> None:
        self.parsed = parsed
        unknown = set(params) - set(parsed["parameters"])
        assert not unknown, f"no such parameters: {unknown}"
        self.params = {name: params.get(name, p.get("default")) for name, p in parsed["parameters"].items()}
        missing = [name for name, value in self.params.items() if value is None]
        assert not missing, f"parameters without a value: {missing}"
        self.deployed: dict[str, Any] = {}
        self.scope: dict[str, Any] = {}

    def name(self, text: str) -> Any:
        for table in (self.scope, self.params, self.deployed):
            if text in table:
                return table[text]
        if text in self.parsed["variables"]:
            return self.value(self.parsed["variables"][text]["value"])
        if text in self.parsed["resources"]:
            raise AssertionError(f"{text} is used before it is deployed")
        return None

    def value(self, expr: Any) -> Any:
        if expr is None or isinstance(expr, (bool, int)):
            return expr
        if isinstance(expr, str):
            named = self.name(expr)
            if named is not None:
                return named
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.path(m.group(1))), expr)
        if isinstance(expr, list):
            return [self.value(item) for item in expr]
        if "loop_type" in expr:
            detail = expr["loop_type"]["detail"]
            items = []
            for item in self.value(detail["array_name"]):
                self.scope[detail["item_name"]] = item
                items.append(self.value(expr["config"]))
            self.scope.pop(detail["item_name"], None)
            return items
        if "function" in expr:
            return self.function(expr["function"]["type"], expr["function"]["parameters"])
        if "operator" in expr:
            return self.operator(expr["operator"]["type"], expr["operator"]["operands"], None)
        return {key: self.value(item) for key, item in expr.items()}

    def path(self, dotted: str) -> Any:
        first, *rest = dotted.split(".")
        found = self.value(first)
        for part in rest:
            found = found[part]
        return found

    def operator(self, kind: str, operands: dict[str, Any], base: Any) -> Any:
        """An operator; with ``base``, the left operand's leading name is a property of ``base`` (pycep nests
        `a.b.c` and `x.value == y` to the right)."""

        def left(expr: Any) -> Any:
            return self.apply(base, expr) if base is not None else self.value(expr)

        if kind == "property_accessor":
            return self.apply(left(operands["operand_1"]), operands["operand_2"])
        if kind == "index_accessor":
            return left(operands["operand_1"])[self.value(operands["operand_2"])]
        if kind == "equals":
            return left(operands["operand_1"]) == self.value(operands["operand_2"])
        if kind == "not":
            return not left(operands["bool_value"])
        if kind == "conditional":
            chosen = "true_value" if left(operands["condition"]) else "false_value"
            return self.value(operands[chosen])
        raise AssertionError(f"the evaluator does not know the operator {kind}: teach it")

    def apply(self, base: Any, expr: Any) -> Any:
        if isinstance(expr, str):
            return base[expr]
        return self.operator(expr["operator"]["type"], expr["operator"]["operands"], base)

    def function(self, kind: str, parameters: dict[str, Any]) -> Any:
        if kind == "guid":
            # deterministic over its arguments, like Bicep's: equal arguments, equal GUID
            return "guid(" + ",".join(str(self.value(v)) for v in parameters.values()) + ")"
        if kind == "filter":
            kept = []
            for item in self.value(parameters["input_array"]):
                self.scope[parameters["input_element"]] = item
                if self.apply(item, strip_element(parameters["expression"], parameters["input_element"])):
                    kept.append(item)
            self.scope.pop(parameters["input_element"], None)
            return kept
        raise AssertionError(f"the evaluator does not know the function {kind}: teach it")

    def resource(self, name: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(the resource's properties, or None when its condition is false; its declaration)."""
        declared = self.parsed["resources"][name]
        config = declared["config"]
        if "condition" in config and "config" in config:
            if not self.value(config["condition"]):
                return None, declared
            config = config["config"]
        return config, declared


def strip_element(expr: Any, element: str) -> Any:
    """A lambda's body `role.value == x` as pycep nests it, without the leading `role.`."""
    operands = expr["operator"]["operands"]
    assert expr["operator"]["type"] == "property_accessor", expr
    assert operands["operand_1"] == element, expr
    return operands["operand_2"]


def load_into_entra(bicep: Bicep, entra: EntraStandIn, agent_id: str) -> list[str]:
    """Deploy the file's resources into the stand-in, in order; returns what each did. ``agent_id`` is the app
    (client) ID the existing app registration or identity has (the answer: Entra assigns it, not the file)."""
    done = []
    loaders: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], str]] = {}

    def application(name: str, config: dict[str, Any], declared: dict[str, Any]) -> str:
        props = bicep.value(config)
        api = props["api"]
        scopes = [s for s in api["oauth2PermissionScopes"] if s["isEnabled"]]
        assert props["identifierUris"] == [f"api://{agent_id}"]
        app = entra.register_app(
            agent_id,
            display_name=props["displayName"],
            identifier_uri=props["identifierUris"][0],
            exposed_scopes=[s["value"] for s in scopes],
        )
        by_id = {s["id"]: s["value"] for s in scopes}
        for pre in api["preAuthorizedApplications"]:
            assert pre["delegatedPermissionIds"], pre
            assert set(pre["delegatedPermissionIds"]) <= set(by_id), "pre-authorized for the declared scope"
            entra.pre_authorize(agent_id, pre["appId"], [by_id[i] for i in pre["delegatedPermissionIds"]])
        bicep.deployed[name] = {"appId": app.app_id, "uniqueName": props["uniqueName"], "id": app.object_id}
        clients = len(api["preAuthorizedApplications"])
        return f"app {props['uniqueName']}: scopes {sorted(by_id.values())}, {clients} clients"

    def service_principal(name: str, config: dict[str, Any], declared: dict[str, Any]) -> str:
        app = entra.app(bicep.value(config["appId"]))
        roles = [{"value": value, "id": role_id} for value, role_id in app.app_role_ids.items()]
        bicep.deployed[name] = {"id": app.service_principal_id, "appId": app.app_id, "appRoles": roles}
        return f"service principal of {app.display_name}{' (existing)' if declared['existing'] else ''}"

    def graph_federation(name: str, config: dict[str, Any], declared: dict[str, Any]) -> str:
        props = bicep.value(config)
        parent, _, credential = props["name"].partition("/")
        assert parent == bicep.deployed["agentApp"]["uniqueName"], "the credential belongs to the agent's app"
        entra.add_federated_credential(
            agent_id,
            issuer=props["issuer"],
            subject=props["subject"],
            audiences=props["audiences"],
            name=credential,
        )
        return f"federated credential {credential}: {props['subject']}"

    def role_assignment(name: str, config: dict[str, Any], declared: dict[str, Any]) -> str:
        props = bicep.value(config)
        principal = next(a for a in entra.apps() if a.service_principal_id == props["principalId"])
        resource = next(a for a in entra.apps() if a.service_principal_id == props["resourceId"])
        (role,) = [value for value, role_id in resource.app_role_ids.items() if role_id == props["appRoleId"]]
        entra.assign_role(principal.app_id, resource.app_id, role)
        return f"app role {role} of {resource.display_name} to {principal.display_name}"

    def managed_identity(name: str, config: dict[str, Any], declared: dict[str, Any]) -> str:
        identity = entra.add_managed_identity(agent_id, display_name=bicep.value(config["name"]))
        bicep.deployed[name] = {
            "properties": {"clientId": identity.app_id, "principalId": identity.service_principal_id}
        }
        return f"managed identity {identity.display_name}"

    def arm_federation(name: str, config: dict[str, Any], declared: dict[str, Any]) -> str:
        props = bicep.value(config["properties"])
        parent, _, credential = bicep.value(config["name"]).partition("/")
        assert parent == bicep.params["identityName"]
        entra.add_federated_credential(
            agent_id,
            issuer=props["issuer"],
            subject=props["subject"],
            audiences=props["audiences"],
            name=credential,
        )
        return f"federated credential {credential}: {props['subject']}"

    loaders = {
        "Microsoft.Graph/applications": application,
        "Microsoft.Graph/servicePrincipals": service_principal,
        "Microsoft.Graph/applications/federatedIdentityCredentials": graph_federation,
        "Microsoft.Graph/appRoleAssignedTo": role_assignment,
        "Microsoft.ManagedIdentity/userAssignedIdentities": managed_identity,
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials": arm_federation,
    }
    for name, declared in bicep.parsed["resources"].items():
        assert declared["type"] in loaders, f"{name}: the test does not know {declared['type']}: teach it"
        config, declared = bicep.resource(name)
        if config is None:
            continue
        if declared["existing"] and declared["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities":
            continue
        done.append(loaders[declared["type"]](name, config, declared))
    return done


def chart(baked: Baked) -> tuple[dict[str, Any], dict[str, str]]:
    """The service account and the agent container's environment, as helm renders the chart for nonprod."""
    rendered = subprocess.run(
        [tool("helm"), "template", "agent", str(baked.chart),
         "--namespace", str(baked.answers["aks_namespace"]),
         "-f", str(baked.chart / "values.yaml"), "-f", str(baked.chart / "values-nonprod.yaml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered.stdout) if doc}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    return docs["ServiceAccount"], env


IDENTITIES = {
    "app_registration": {"agent_identity": "app_registration", "client_app_ids": " ".join(CLIENTS)},
    "managed_identity": {"agent_identity": "managed_identity", "enforce_client_authz": False},
}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("answers", IDENTITIES.values(), ids=IDENTITIES.keys())
def test_the_identity_the_infra_declares_lets_the_agent_serve_exactly_the_clients_it_should(
    baker: Baker, tmp_path: Path, answers: dict[str, Any]
) -> None:
    python_version = python_answer()
    assert python_version, "the template offers this interpreter's Python (the agent installs on it)"
    baked = baker.bake(**answers, python_version=python_version)
    agent_id = REQUIRED_ANSWERS["agent_entra_app_id"]
    account, env = chart(baked)
    annotations = account["metadata"]["annotations"]
    namespace, service_account = account["metadata"]["namespace"], account["metadata"]["name"]
    enforced = env["LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ"] == "true"
    assert annotations["azure.workload.identity/client-id"] == agent_id
    assert enforced == (answers["agent_identity"] == "app_registration")
    python = install(baked.path)

    system = System(
        SystemOptions(
            workdir=tmp_path / "system",
            identity_mode="entra",
            service_command="dev",
            tenant_id=annotations["azure.workload.identity/tenant-id"],
            platform_app_id=REQUIRED_ANSWERS["platform_app_id"],
        )
    )
    with system:
        entra = system.entra
        # the client apps exist in the tenant; the Bicep pre-authorizes some of them
        clients = []
        for client_id in (*CLIENTS, str(uuid.uuid4())):
            entra.register_app(client_id, display_name=f"client {client_id[:8]}")
            entra.assign_role(client_id, system.tenant.platform.app_id, SESSION_ROLE)
            clients.append(App(client_id, f"client {client_id[:8]}", entra.add_secret(client_id)))
        *authorized, outsider = clients

        bicep = Bicep(
            parse_bicep(baked.path / "infra" / "main.bicep"),
            {"aksOidcIssuerUrl": entra.kubernetes_issuer_url, "environmentName": "nonprod"},
        )
        assert bicep.value("platformRole") == Settings.model_fields["entra_register_role"].default
        loaded = load_into_entra(bicep, entra, agent_id)
        assert any(line.startswith("app role Agent.Register") for line in loaded), loaded
        assert any(f"system:serviceaccount:{namespace}:{service_account}" in line for line in loaded), loaded

        token = entra.write_service_account_token(
            tmp_path / "sa-token", namespace=namespace, service_account=service_account
        )
        identity = WorkloadIdentity(App(agent_id, baked.path.name), namespace, service_account, token)
        readiness = free_port()
        agent_env = {
            **system.agent_env(identity, service_name=baked.path.name, readiness_port=readiness),
            "LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ": env["LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ"],
            "AGENT_HEALTH_PORT": str(free_port()),
            "AGENT_DRAIN_TIMEOUT_SECONDS": "5",
            "AGENT_LOAD_THRESHOLD": "inf",
            "HF_HUB_OFFLINE": "1",
            "OPENAI_API_KEY": "placeholder-never-sent",  # the model providers are never reached here
        }
        package = str(baked.answers["package_name"])
        system.start_agent("agent", [str(python), "-m", package, "start"], agent_env, cwd=baked.path)
        system.livekit.wait_for_worker(agent_id, timeout=120)
        wait_for(lambda: http_status(f"http://127.0.0.1:{readiness}/ready") == 200, timeout=30, what="ready")

        started = system.start_session(authorized[0], agent_id)
        stranger = system.start_session(outsider, agent_id)
        graph_asked = bool(entra.graph_requests)

    assert started.status_code == 200, started.text
    if enforced:
        assert stranger.status_code == 403, stranger.text
        assert "not pre-authorized" in stranger.text
        assert graph_asked, "the platform asked Graph"
    else:
        assert stranger.status_code == 200, stranger.text
