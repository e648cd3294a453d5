"""The service's Helm chart (service/chart/lkps): lints and renders valid Kubernetes 1.33 over a values
matrix, refuses bad values (secrets above all), and configures the service as its settings and image want."""

from __future__ import annotations

import fnmatch
import json
import re
import socket
import subprocess
from typing import Any

import httpx
import pytest
import tomllib
import yaml

from lkps.settings import Settings
from tests.support.deploy_kit import (
    CASES,
    CHART,
    DIGEST,
    GATEWAY_SECRET_KEY,
    KEY_VAULT,
    KUBE_VERSION,
    case,
    chart_values,
    env_of,
    image_test_repository,
    install_namespace,
    lint,
    render,
    run,
    server_container,
)
from tests.support.paths import REPO
from tests.support.service import running_app, service_env
from tests.support.tools import tool

BUILT_IN_KINDS = {
    "Deployment",
    "Service",
    "ServiceAccount",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Job",
}
# Kinds of CRDs the cluster must have when they are enabled; kubernetes-validate has no schema for them, so
# their shape is checked by the tests below.
CRD_KINDS = {"SecretProviderClass", "ServiceMonitor"}
SECRET_VARIABLES = {
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "LKPS_DATABASE_URL",
    "LKPS_GATEWAY_SHARED_SECRET",
}


@pytest.fixture(scope="module")
def validation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """kubernetes-validate --strict over every case's rendering at once: its output lines per case."""
    folder = tmp_path_factory.mktemp("rendered")
    paths = {}
    for name in CASES:
        rendered = case(name)
        assert rendered.returncode == 0, f"{name}: {rendered.stderr}"
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(rendered.stdout, encoding="utf-8")
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBE_VERSION, *map(str, paths.values())],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return {name: "\n".join(line for line in lines if f"{path} " in line) for name, path in paths.items()}


@pytest.mark.parametrize("name", CASES)
def test_chart_lints_and_renders_valid_kubernetes_1_33(name: str, validation: dict[str, str]) -> None:
    files, values = CASES[name]
    linted = lint(values, files)
    rendered = case(name)
    output = validation[name]

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "ERROR" not in output, output
    validated = {kind.lower() for kind in re.findall(r"passed for resource (\w+)/", output)}
    assert validated == {kind.lower() for kind in rendered.kinds() if kind not in CRD_KINDS}
    unknown = set(re.findall(r"Couldn't find schema for kind (\w+)", output))
    assert unknown == {kind for kind in rendered.kinds() if kind in CRD_KINDS}
    assert set(rendered.kinds()) <= BUILT_IN_KINDS | CRD_KINDS
    assert "Secret" not in rendered.kinds(), "the chart must never carry a secret itself"


def test_defaults_run_two_replicas_spread_over_zones_and_nodes() -> None:
    rendered = case("defaults")
    deployment = rendered.one("Deployment")
    hpa = rendered.one("HorizontalPodAutoscaler")
    pdb = rendered.one("PodDisruptionBudget")
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    selector = deployment["spec"]["selector"]["matchLabels"]

    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(c["labelSelector"]["matchLabels"] == selector for c in spread)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert case("hpa-off").one("Deployment")["spec"]["replicas"] == 3


def test_probes_readiness_on_health_liveness_on_a_route_without_dependencies() -> None:
    container = server_container(case("defaults"))
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert readiness == {"path": "/api/health", "port": "http"}
    assert liveness["port"] == "http"
    assert liveness["path"] != "/api/health", "a database outage would restart every replica"
    assert ports == {"http": 8080}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_liveness_path_answers_while_database_and_livekit_are_down() -> None:
    probes = chart_values()["probes"]
    # Nothing listens on either port: the database and LiveKit are both down.
    env = service_env(
        f"ws://127.0.0.1:{closed_port()}",
        f"postgresql://lkps@127.0.0.1:{closed_port()}/lkps",
        LKPS_HEALTH_TIMEOUT="0.5",
    )

    async with running_app(Settings.from_env(env)) as app:
        readiness = await app.client.get(probes["readiness"]["path"])
        liveness = await app.client.get(probes["liveness"]["path"])

    assert readiness.status_code == 503
    assert readiness.json()["reason"] == "database"
    assert liveness.status_code == httpx.codes.OK


def test_shutdown_waits_for_endpoint_drain_requests_and_the_audit_flush() -> None:
    shutdown = chart_values()["shutdown"]
    rendered = case("defaults")
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_of(container)

    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": shutdown["preStopSeconds"]}}
    assert env["LKPS_AUDIT_FLUSH_TIMEOUT"]["value"] == str(shutdown["auditFlushSeconds"])
    budget = shutdown["preStopSeconds"] + shutdown["requestDrainSeconds"] + shutdown["auditFlushSeconds"]
    assert pod["terminationGracePeriodSeconds"] > budget


def dockerfile_user() -> int:
    dockerfile = (REPO / "service" / "Dockerfile").read_text(encoding="utf-8")
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user, "service/Dockerfile has no numeric USER"
    return int(user.group(1))


@pytest.mark.parametrize("name", CASES)
def test_every_pod_is_hardened(name: str) -> None:
    rendered = case(name)
    pods = [doc["spec"]["template"]["spec"] for doc in rendered.docs if doc["kind"] in {"Deployment", "Job"}]
    uid = dockerfile_user()

    assert pods
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["runAsUser"] == uid
            assert container["resources"]["requests"] == container["resources"]["limits"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        tmp = next(volume for volume in pod["volumes"] if volume["name"] == "tmp")
        assert "emptyDir" in tmp


@pytest.mark.parametrize("name", CASES)
def test_secrets_reach_the_containers_only_through_secret_references(name: str) -> None:
    rendered = case(name)
    containers = [
        container
        for doc in rendered.docs
        if doc["kind"] in {"Deployment", "Job"}
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]

    for container in containers:
        for variable, entry in env_of(container).items():
            if variable in SECRET_VARIABLES:
                assert "value" not in entry, f"{name}: {variable} has a plain value"
                assert set(entry["valueFrom"]) == {"secretKeyRef"}


def test_workload_identity_for_graph() -> None:
    values = chart_values()
    rendered = case("defaults")
    account = rendered.one("ServiceAccount", values["serviceAccount"]["name"])
    pod = rendered.one("Deployment")["spec"]["template"]

    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert (
        account["metadata"]["annotations"]["azure.workload.identity/client-id"] == values["azure"]["clientId"]
    )
    assert (
        account["metadata"]["annotations"]["azure.workload.identity/tenant-id"] == values["azure"]["tenantId"]
    )
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["namespace"] == install_namespace()
    env = env_of(pod["spec"]["containers"][0])
    # a Graph client secret would win over workload identity in lkps.graph.build_credential
    assert not {"LKPS_GRAPH_CLIENT_ID", "LKPS_GRAPH_CLIENT_SECRET"} & set(env)


@pytest.mark.parametrize("name", ["defaults", "key-vault", "prod"])
def test_migration_job_gets_the_database_url_and_nothing_else(name: str) -> None:
    rendered = case(name)
    job = rendered.one("Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    hooks = {
        doc["kind"]: int(doc["metadata"]["annotations"]["helm.sh/hook-weight"])
        for doc in rendered.docs
        if "helm.sh/hook" in doc["metadata"].get("annotations", {})
    }

    assert set(env_of(container)) == {"LKPS_DATABASE_URL"}
    assert "envFrom" not in container
    assert container["args"] == ["migrate"]
    assert container["image"] == server_container(rendered)["image"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert pod["restartPolicy"] == "Never"
    assert "azure.workload.identity/use" not in pod.get("metadata", {}).get("labels", {})
    # what the Job needs exists before it: its service account, network policy and (Key Vault) secret class
    assert all(weight < hooks["Job"] for kind, weight in hooks.items() if kind != "Job")
    assert {"ServiceAccount", "NetworkPolicy"} <= set(hooks)
    server = rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not set(server.items()) <= set(labels.items()), "the Service and PDB must not select the Job's pod"


def test_migration_pods_reach_only_dns_and_postgres() -> None:
    rendered = case("defaults")
    policy = rendered.one("NetworkPolicy", "lkps-migration")
    postgres = chart_values()["networkPolicy"]["egress"]["postgres"]
    job_labels = rendered.one("Job")["spec"]["template"]["metadata"]["labels"]

    assert set(policy["spec"]["podSelector"]["matchLabels"].items()) <= set(job_labels.items())
    assert policy["spec"]["ingress"] == []
    dns, database = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert [peer["ipBlock"]["cidr"] for peer in database["to"]] == postgres["cidrs"]
    assert [p["port"] for p in database["ports"]] == postgres["ports"]


def key_vault_objects(provider_class: dict[str, Any]) -> dict[str, str]:
    parameters = provider_class["spec"]["parameters"]
    objects = yaml.safe_load(parameters["objects"])["array"]
    parsed = [yaml.safe_load(item) for item in objects]
    assert all(item["objectType"] == "secret" for item in parsed)
    return {item["objectAlias"]: item["objectName"] for item in parsed}


@pytest.mark.parametrize("name", ["key-vault", "gateway-key-vault", "prod"])
def test_key_vault_secrets_are_mounted_and_synced_to_the_secret_the_pods_read(name: str) -> None:
    _, overrides = CASES[name]
    rendered = case(name)
    values = chart_values()
    vault = rendered.one("SecretProviderClass", "lkps")
    container = server_container(rendered)
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    env = env_of(container)
    synced = vault["spec"]["secretObjects"][0]

    assert vault["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
    assert vault["spec"]["provider"] == "azure"
    assert vault["spec"]["parameters"]["clientID"] == values["azure"]["clientId"]
    assert vault["spec"]["parameters"]["usePodIdentity"] == "false"
    expected_vault = overrides.get("secrets", {}).get("keyVault", {}).get("name") or "kv-lkps-prod"
    assert vault["spec"]["parameters"]["keyvaultName"] == expected_vault
    objects = key_vault_objects(vault)
    referenced = {
        variable: entry["valueFrom"]["secretKeyRef"]
        for variable, entry in env.items()
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    assert set(objects) == set(referenced)
    assert {ref["name"] for ref in referenced.values()} == {synced["secretName"]}
    assert {item["key"]: item["objectName"] for item in synced["data"]} == {key: key for key in objects}
    assert all(ref["key"] == variable for variable, ref in referenced.items())
    volume = next(v for v in pod["volumes"] if v["name"] == "secrets-store")
    assert volume["csi"]["volumeAttributes"]["secretProviderClass"] == vault["metadata"]["name"]
    assert any(m["name"] == "secrets-store" for m in container["volumeMounts"])
    # the migration's class holds the database URL only
    database = rendered.one("SecretProviderClass", "lkps-database")
    assert key_vault_objects(database) == {"LKPS_DATABASE_URL": objects["LKPS_DATABASE_URL"]}
    job = rendered.one("Job")
    job_ref = env_of(job["spec"]["template"]["spec"]["containers"][0])["LKPS_DATABASE_URL"]
    assert job_ref["valueFrom"]["secretKeyRef"]["name"] == database["spec"]["secretObjects"][0]["secretName"]
    migrate_account = rendered.one("ServiceAccount", values["migration"]["serviceAccountName"])
    assert (
        migrate_account["metadata"]["annotations"]["azure.workload.identity/client-id"]
        == (values["azure"]["clientId"])
    )


def test_gateway_mode_reads_the_shared_secret_from_the_configured_source() -> None:
    rendered = case("gateway-existing-secret")
    env = env_of(server_container(rendered))
    values = chart_values()

    assert env["LKPS_IDENTITY_MODE"]["value"] == "gateway"
    assert env["LKPS_GATEWAY_SHARED_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": values["secrets"]["existingSecret"]["name"],
        "key": "LKPS_GATEWAY_SHARED_SECRET",
    }
    assert env["LKPS_GATEWAY_SECRET_HEADER"]["value"] == values["identity"]["gateway"]["secretHeader"]
    assert "LKPS_ENTRA_AUDIENCE" not in env
    entra = env_of(server_container(case("defaults")))
    assert "LKPS_GATEWAY_SHARED_SECRET" not in entra
    assert entra["LKPS_ENTRA_AUDIENCE"]["value"] == ",".join(values["identity"]["entra"]["audiences"])


def settings_reads() -> set[str]:
    """Every variable Settings.from_env looks up, by name, in an environment that records the lookups."""

    class Recording(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.asked: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.asked.add(key)
            return super().get(key, default)

    env = Recording()
    with pytest.raises(ValueError, match="not set"):
        Settings.from_env(env)
    return env.asked


@pytest.mark.parametrize("name", CASES)
def test_every_service_variable_the_chart_sets_is_one_the_settings_read(name: str) -> None:
    env = env_of(server_container(case(name)))
    ours = {
        variable
        for variable in env
        if variable.startswith(("LKPS_", "LIVEKIT_", "OTEL_EXPORTER_", "OTEL_SERVICE_NAME", "SSL_"))
    }

    assert ours <= settings_reads()
    assert "LKPS_DATABASE_URL" in ours


@pytest.mark.parametrize("name", ["defaults", "gateway-existing-secret", "telemetry-and-extras"])
def test_the_service_accepts_the_environment_the_chart_gives_it(name: str) -> None:
    env = env_of(server_container(case(name)))
    given = {variable: entry["value"] for variable, entry in env.items() if "value" in entry}
    # what the Secret would hold
    given |= {
        "LIVEKIT_API_KEY": "APIlkps",
        "LIVEKIT_API_SECRET": "s" * 40,
        "LKPS_DATABASE_URL": "postgresql://lkps:pw@db.example.com:5432/lkps",
    }

    settings = Settings.from_env(given)

    assert settings.identity_mode == given["LKPS_IDENTITY_MODE"]
    assert settings.migrate_on_start is False
    assert settings.log_format == chart_values()["logging"]["format"]


def test_chart_runs_the_image_make_test_image_builds() -> None:
    values = chart_values()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    service = tomllib.loads((REPO / "service" / "pyproject.toml").read_text(encoding="utf-8"))
    dockerfile = (REPO / "service" / "Dockerfile").read_text(encoding="utf-8")
    container = server_container(case("defaults"))

    # the registry is yours; the repository name is the one the image tests tag (lkp-image-test/lkps)
    assert values["image"]["repository"].rsplit("/", 1)[1] == image_test_repository().rsplit("/", 1)[1]
    assert chart["appVersion"] == service["project"]["version"]
    assert container["image"] == f"{values['image']['repository']}:{chart['appVersion']}"
    assert server_container(case("telemetry-and-extras"))["image"].endswith(f"@{DIGEST}")
    # the image's ENTRYPOINT is `python -m lkps`; the chart passes its CMD's arguments, same port
    assert 'ENTRYPOINT ["python", "-m", "lkps"]' in dockerfile
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd, "service/Dockerfile has no exec-form CMD"
    assert container["args"] == json.loads(cmd.group(1))
    assert "--port" in container["args"]
    assert container["args"][container["args"].index("--port") + 1] == str(
        container["ports"][0]["containerPort"]
    )
    assert "command" not in container


def rules(policy: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = policy["spec"].get(direction, [])
    return found


def test_network_policy_admits_gateway_livekit_agents_and_probes_on_the_service_port() -> None:
    values = chart_values()["networkPolicy"]
    policy = case("defaults").one("NetworkPolicy", "lkps")
    ingress = rules(policy, "ingress")
    peers = [peer for rule in ingress for peer in rule["from"]]

    assert all(port == {"protocol": "TCP", "port": 8080} for rule in ingress for port in rule["ports"])
    for source in ("gateway", "livekit", "agents"):
        for selector in values["ingress"][source]["selectors"]:
            expected: dict[str, Any] = {}
            if "namespaceLabels" in selector:
                labels = selector["namespaceLabels"]
                expected["namespaceSelector"] = {"matchLabels": labels} if labels else {}
            if "podLabels" in selector:
                expected["podSelector"] = {"matchLabels": selector["podLabels"]}
            assert expected in peers, source
    assert {"ipBlock": {"cidr": values["ingress"]["probes"]["cidrs"][0]}} in peers
    # the agents' worker websocket: pods the agent chart labels, from any namespace
    assert {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "livekit-platform"}},
    } in peers
    # Prometheus only when something scrapes
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert monitoring not in peers
    scraped = case("service-monitor").one("NetworkPolicy", "lkps")
    assert monitoring in [peer for rule in rules(scraped, "ingress") for peer in rule["from"]]


def test_agent_ingress_selects_the_pods_the_agent_chart_labels() -> None:
    agent_chart = (
        REPO / "{{cookiecutter.agent_slug}}" / "charts" / "{{cookiecutter.agent_slug}}" / "templates"
    )
    helpers = (agent_chart / "_helpers.tpl").read_text(encoding="utf-8")
    pod_template = (agent_chart / "deployment.yaml").read_text(encoding="utf-8").split("template:", 1)[1]
    (selector,) = chart_values()["networkPolicy"]["ingress"]["agents"]["selectors"]

    assert selector["namespaceLabels"] == {}, "agents run in their own namespaces"
    for key, value in selector["podLabels"].items():
        assert re.search(
            rf'define "agent.labels".*^{re.escape(key)}: {re.escape(value)}$', helpers, re.S | re.M
        )
    assert 'include "agent.labels" . | nindent 8' in pod_template


def test_network_policy_egress_is_dns_postgres_livekit_entra_and_graph_only() -> None:
    values = chart_values()["networkPolicy"]["egress"]
    egress = rules(case("defaults").one("NetworkPolicy", "lkps"), "egress")
    dns, *others = egress
    allowed_ports = {
        port for name in ("postgres", "livekit", "entra", "graph") for port in values[name]["ports"]
    }

    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {p["port"] for p in dns["ports"]} == {53}
    assert len(others) == 4
    assert all(rule["to"] for rule in egress), "a rule without peers would admit every destination"
    assert {p["port"] for rule in others for p in rule["ports"]} == allowed_ports
    cidrs = {peer["ipBlock"]["cidr"] for rule in others for peer in rule["to"] if "ipBlock" in peer}
    assert "0.0.0.0/0" not in cidrs
    with_collector = rules(case("telemetry-and-extras").one("NetworkPolicy", "lkps"), "egress")
    assert [p["port"] for p in with_collector[-1]["ports"]] == values["telemetry"]["ports"]


def test_an_empty_peer_drops_its_rule_instead_of_admitting_everyone() -> None:
    empty: dict[str, list[Any]] = {"cidrs": [], "selectors": []}
    rendered = render(
        {
            "networkPolicy": {
                "egress": {"graph": {**empty, "ports": [443]}},
                "ingress": {"livekit": empty, "agents": empty},
            }
        }
    )
    policy = rendered.one("NetworkPolicy", "lkps")

    assert len(rules(policy, "egress")) == 4
    assert len(rules(policy, "ingress")) == 2
    assert all(rule.get("to") for rule in rules(policy, "egress"))
    assert all(rule.get("from") for rule in rules(policy, "ingress"))


@pytest.mark.parametrize("name", ["service-monitor", "azure-managed-prometheus"])
def test_service_monitor_scrapes_metrics_on_the_service_port(name: str) -> None:
    _, overrides = CASES[name]
    rendered = case(name)
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    (endpoint,) = monitor["spec"]["endpoints"]

    assert monitor["apiVersion"] == overrides["metrics"]["serviceMonitor"].get(
        "apiVersion", "monitoring.coreos.com/v1"
    )
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert set(monitor["spec"]["selector"]["matchLabels"].items()) <= set(
        service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [install_namespace()]}
    for key, value in overrides["metrics"]["serviceMonitor"].get("labels", {}).items():
        assert monitor["metadata"]["labels"][key] == value
    assert "ServiceMonitor" not in case("defaults").kinds()


def test_service_selects_only_serving_pods_on_one_port() -> None:
    rendered = case("defaults")
    service = rendered.one("Service")
    deployment = rendered.one("Deployment")

    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]


# Blocks documented once for all their keys: Kubernetes' own security contexts, and the network peers (each a
# cidrs/selectors(/ports) triple, described above networkPolicy).
SHAPES = (
    "podSecurityContext",
    "securityContext",
    "networkPolicy.ingress.*",
    "networkPolicy.egress.*",
)


def undocumented_values(text: str) -> list[str]:
    """Keys of a values file not directly under a comment (list items and their contents are data)."""
    lines = text.splitlines()
    missing: list[str] = []
    parents: list[tuple[int, str]] = []
    inside_list: int | None = None
    for number, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if inside_list is not None and indent > inside_list:
            continue
        inside_list = indent if stripped.startswith("- ") else None
        key = re.match(r"([\w./-]+):", stripped)
        if inside_list is not None or key is None:
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        parent = ".".join(name for _, name in parents)
        commented = number > 0 and lines[number - 1].strip().startswith("#")
        once = any(
            fnmatch.fnmatch(parent, shape) or fnmatch.fnmatch(parent, f"{shape}.*") for shape in SHAPES
        )
        if not commented and not once:
            missing.append(f"{parent}.{key.group(1)}".lstrip("."))
        parents.append((indent, key.group(1)))
    return missing


def test_every_value_is_documented_where_it_is_defined() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")

    assert undocumented_values("a:\n  # -- why\n  b: 1\n  c: 2\n") == ["a", "a.c"]  # the rule itself
    assert undocumented_values(text) == []


def test_values_and_schema_name_the_same_settings() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text(encoding="utf-8"))

    assert set(schema["properties"]) == set(chart_values())
    assert set(schema["required"]) == set(chart_values())
    assert schema["additionalProperties"] is False


REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "a LiveKit secret as a value": ({"livekit": {"apiSecret": "s" * 40}}, "apiSecret"),
    "a secret beside the Secret's name": (
        {"secrets": {"existingSecret": {"livekitApiSecret": "s" * 40}}},
        "livekitApiSecret",
    ),
    "a database URL in extraEnv": (
        {"extraEnv": [{"name": "LKPS_DATABASE_URL", "value": "postgresql://u:pw@db/lkps"}]},
        "extraEnv/0",
    ),
    "a provider key in extraEnv": (
        {"extraEnv": [{"name": "OPENAI_API_KEY", "value": "sk-123"}]},
        "extraEnv/0",
    ),
    "a password in extraEnv": ({"extraEnv": [{"name": "pg_password", "value": "pw"}]}, "extraEnv/0"),
    "a variable the chart sets": ({"extraEnv": [{"name": "LKPS_LOG_LEVEL", "value": "debug"}]}, "extraEnv/0"),
    "gateway mode without a secret source": ({"identity": {"mode": "gateway"}}, "gatewaySharedSecret"),
    "gateway mode on Key Vault without the secret": (
        {"identity": {"mode": "gateway"}, "secrets": KEY_VAULT},
        "gatewaySharedSecret",
    ),
    "Key Vault without a vault": ({"secrets": {"source": "keyVault"}}, "keyVault/name"),
    "a tenant that is not a GUID": ({"azure": {"tenantId": "contoso.onmicrosoft.com"}}, "tenantId"),
    "an all-zero client ID": ({"azure": {"clientId": "00000000-0000-0000-0000-000000000000"}}, "clientId"),
    "one replica with a PDB": ({"autoscaling": {"enabled": False}, "replicaCount": 1}, "replicaCount"),
    "autoscaling down to one with a PDB": ({"autoscaling": {"minReplicas": 1}}, "minReplicas"),
    "a PDB that blocks every drain": ({"podDisruptionBudget": {"minAvailable": 2}}, "minAvailable"),
    "fewer maximum than minimum replicas": ({"autoscaling": {"maxReplicas": 1}}, "maxReplicas"),
    "entra mode without audiences": ({"identity": {"entra": {"audiences": []}}}, "audiences"),
    "a LiveKit URL without TLS": ({"livekit": {"url": "ws://livekit.example.com"}}, "url"),
    "a token lifetime below a minute": ({"tokens": {"agentTtlSeconds": 30}}, "agentTtlSeconds"),
    "root": ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    "a writable root filesystem": (
        {"securityContext": {"readOnlyRootFilesystem": False}},
        "readOnlyRootFilesystem",
    ),
    "an added capability": ({"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, "capabilities"),
    "a selector that selects nothing in particular": (
        {"networkPolicy": {"ingress": {"gateway": {"selectors": [{}]}}}},
        "selectors/0",
    ),
    "an unknown identity mode": ({"identity": {"mode": "header"}}, "mode"),
    "an unknown setting": ({"replicas": 3}, "replicas"),
}


@pytest.mark.parametrize("values", REJECTED.values(), ids=REJECTED.keys())
def test_bad_values_are_refused_naming_the_value(values: tuple[dict[str, Any], str]) -> None:
    overrides, named = values
    rendered = render(overrides)

    assert rendered.returncode != 0
    assert named in rendered.stderr


ACCEPTED: dict[str, dict[str, Any]] = {
    "a provider key from a Secret": {
        "extraEnv": [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "p", "key": "k"}}}]
    },
    "a plain setting in extraEnv": {"extraEnv": [{"name": "LKPS_REGISTRY_CACHE_TTL", "value": "10"}]},
    "one replica without a PDB": {
        "autoscaling": {"enabled": False},
        "replicaCount": 1,
        "podDisruptionBudget": {"enabled": False},
    },
    "gateway mode with its secret": {"identity": {"mode": "gateway"}, "secrets": GATEWAY_SECRET_KEY},
}


@pytest.mark.parametrize("values", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_refusals_above_are_specific(values: dict[str, Any]) -> None:
    rendered = render(values)

    assert rendered.returncode == 0, rendered.stderr


def test_gateway_mode_without_a_secret_fails_with_one_line_even_past_the_schema() -> None:
    # `--skip-schema-validation` leaves the templates' own check, which names the value and the fix
    skip = ["--skip-schema-validation", "--set", "identity.mode=gateway"]
    result = run([tool("helm"), "template", "lkps", str(CHART), "--kube-version", KUBE_VERSION, *skip])

    assert result.returncode != 0
    assert "secrets.existingSecret.keys.gatewaySharedSecret" in result.stderr


def test_notes_say_where_it_answers_and_warn_when_the_network_is_open() -> None:
    def notes(*settings: str) -> str:
        # client-side: no cluster is contacted (helm install has no --kube-version; its default is recent)
        namespace = f"--namespace={install_namespace()}"
        result = run([tool("helm"), "install", "lkps", str(CHART), "--dry-run=client", namespace, *settings])
        assert result.returncode == 0, result.stderr
        return result.stdout.split("NOTES:", 1)[1]

    default = notes()
    open_gateway = notes(
        "--set",
        "networkPolicy.enabled=false,identity.mode=gateway",
        "--set",
        "secrets.existingSecret.keys.gatewaySharedSecret=LKPS_GATEWAY_SHARED_SECRET",
    )

    assert f"http://lkps.{install_namespace()}.svc:8080" in default
    assert "WARNING" not in default
    assert "WARNING: networkPolicy.enabled is false" in open_gateway
    assert "lkps-gateway-policy.xml" in open_gateway
