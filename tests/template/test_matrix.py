"""Static checks on every pairwise bake: rendering, pruning, chart, manifests, Dockerfile, CI, Bicep."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.baking import REQUIRED_ANSWERS, Baked, helm_template
from tests.support.template_matrix import CHOICES, MATRIX, MATRIX_IDS, all_pairs, pairs_of
from tests.support.tools import tool

UNRENDERED = re.compile(r"\{\{\s*cookiecutter|\{%|cookiecutter\.")
VALUES_FILES = ("values-nonprod.yaml", "values-prod.yaml")
PLATFORM_URLS = {
    "values-nonprod.yaml": REQUIRED_ANSWERS["platform_url_nonprod"],
    "values-prod.yaml": REQUIRED_ANSWERS["platform_url_prod"],
}


def test_matrix_covers_every_pair_of_choices() -> None:
    covered = set().union(*(pairs_of(combo) for combo in MATRIX))

    assert covered == all_pairs(CHOICES)


@pytest.fixture(params=MATRIX_IDS)
def baked(request: pytest.FixtureRequest, matrix_bakes: dict[str, Baked]) -> Baked:
    return matrix_bakes[request.param]


def text_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "vendor" not in p.relative_to(root).parts]


def test_nothing_is_left_unrendered(baked: Baked) -> None:
    leftovers = [
        str(path.relative_to(baked.path))
        for path in text_files(baked.path)
        if UNRENDERED.search(path.read_text(encoding="utf-8")) or UNRENDERED.search(str(path))
    ]

    assert leftovers == []


def test_only_the_chosen_options_files_exist(baked: Baked) -> None:
    answers = baked.answers
    root = baked.path
    package = root / "src" / str(answers["package_name"])
    expected = {
        ".github/workflows/ci.yml": answers["ci_system"] == "github",
        ".github/dependabot.yml": answers["ci_system"] == "github",
        "renovate.json": answers["ci_system"] != "github",
        "azure-pipelines.yml": answers["ci_system"] == "azure_pipelines",
        f"src/{answers['package_name']}/telemetry.py": answers["telemetry_exporter"] == "azure_monitor",
        "vendor/livekit-platform-sdk/pyproject.toml": answers["sdk_source"] == "vendored",
        "vendor/livekit-platform-testing/pyproject.toml": answers["sdk_source"] == "vendored",
    }

    assert {name: (root / name).exists() for name in expected} == expected
    for always in ("Dockerfile", ".dockerignore", "Makefile", "README.md", "CODEOWNERS", "infra/main.bicep"):
        assert (root / always).is_file(), always
    assert (package / "agent.py").is_file()
    agent = (package / "agent.py").read_text()
    plugin_imports = {
        "openai": "import openai, silero",
        "openai+deepgram+cartesia": "import cartesia, deepgram, openai, silero",
        "openai-realtime": "import openai\n",
    }
    assert plugin_imports[str(answers["plugins"])] in agent
    assert ("configure_azure_monitor()" in agent) == (answers["telemetry_exporter"] == "azure_monitor")


def manifests(baked: Baked, values_file: str) -> dict[str, dict[str, Any]]:
    rendered = helm_template(baked.chart, str(baked.answers["aks_namespace"]), values_file)
    assert rendered.returncode == 0, rendered.stderr
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    return {doc["kind"]: doc for doc in docs}


def test_chart_lints_and_every_values_file_renders_valid_kubernetes_1_33(
    baked: Baked, tmp_path: Path
) -> None:
    files = []
    for values_file in VALUES_FILES:
        lint = subprocess.run(
            [tool("helm"), "lint", str(baked.chart), "--strict", "-f", str(baked.chart / values_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        rendered = helm_template(baked.chart, str(baked.answers["aks_namespace"]), values_file)
        assert rendered.returncode == 0, rendered.stderr
        files.append(tmp_path / values_file)
        files[-1].write_text(rendered.stdout)

    validate = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", "1.33.0", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    kinds = {kind for f in files for kind in re.findall(r"resource (\w+)/", validate.stdout)}
    expected = {
        "deployment",
        "serviceaccount",
        "horizontalpodautoscaler",
        "poddisruptionbudget",
        "networkpolicy",
    }
    assert kinds == expected


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_manifests_carry_identity_probes_grace_period_and_hardening(baked: Baked, values_file: str) -> None:
    docs = manifests(baked, values_file)
    app_id = baked.answers["agent_entra_app_id"]
    account, deployment = docs["ServiceAccount"], docs["Deployment"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]

    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == app_id
    assert (
        account["metadata"]["annotations"]["azure.workload.identity/tenant-id"]
        == baked.answers["entra_tenant_id"]
    )
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    env = {e["name"]: e for e in container["env"]}
    drain = int(env["AGENT_DRAIN_TIMEOUT_SECONDS"]["value"])
    assert pod["spec"]["terminationGracePeriodSeconds"] >= drain + 90
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "ready"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "ready": 8082, "metrics": 9100}
    assert env["LIVEKIT_PLATFORM_READINESS_PORT"]["value"] == "8082"
    assert env["LIVEKIT_PLATFORM_METRICS_PORT"]["value"] == "9100"
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9100",
        "prometheus.io/path": "/metrics",
    }
    ingress = docs["NetworkPolicy"]["spec"]["ingress"]
    scraped = [rule for rule in ingress if {"protocol": "TCP", "port": 9100} in rule["ports"]]
    assert scraped == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": 9100}],
        }
    ], "only the scraper reaches the metrics port, and it reaches nothing else"
    assert env["AGENT_HEALTH_PORT"]["value"] == "8081"
    assert env["LIVEKIT_PLATFORM_SCOPE"]["value"] == f"api://{baked.answers['platform_app_id']}/.default"
    assert (
        env["LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ"]["value"]
        == str(baked.answers["enforce_client_authz"]).lower()
    )
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert "k8s.pod.name=$(POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) == (baked.answers["telemetry_exporter"] == "otlp")
    assert not {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"} & set(env)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    expected_url = PLATFORM_URLS[values_file]
    assert env["LIVEKIT_PLATFORM_URL"]["value"] == expected_url
    egress_ports = [p.get("port") for rule in docs["NetworkPolicy"]["spec"]["egress"] for p in rule["ports"]]
    assert 53 in egress_ports
    assert 443 in egress_ports


def test_schema_rejects_malformed_guid_and_url_at_helm_template(matrix_bakes: dict[str, Baked]) -> None:
    baked = next(iter(matrix_bakes.values()))
    namespace = str(baked.answers["aks_namespace"])

    bad_guid = helm_template(baked.chart, namespace, "values-prod.yaml", "--set", "azure.clientId=not-a-guid")
    bad_url = helm_template(
        baked.chart, namespace, "values-prod.yaml", "--set", "platform.url=http://x.example"
    )
    short_grace = helm_template(
        baked.chart, namespace, "values-prod.yaml", "--set", "shutdownMarginSeconds=10"
    )

    assert bad_guid.returncode != 0
    assert "clientId" in bad_guid.stderr
    assert bad_url.returncode != 0
    assert "url" in bad_url.stderr
    assert short_grace.returncode != 0
    assert "shutdownMarginSeconds" in short_grace.stderr


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("metrics.port=70000", "port"),
        ("metrics.port=8082", "metrics.port 8082 is a probe port"),
        ("metrics.podMonitor.apiVersion=monitoring.example.com/v1", "apiVersion"),
        ("metrics.podMonitor.interval=soon", "interval"),
        ("metrics.prometheusRule.notRegisteredFor=5 minutes", "notRegisteredFor"),
        ("networkPolicy.metricsScrapers[0].podSelektor.app=prometheus", "podSelektor"),
        ("networkPolicy.metricsScrapers[0].ipBlock.cidr=anywhere", "cidr"),
    ],
)
def test_schema_and_chart_reject_bad_metrics_values(
    matrix_bakes: dict[str, Baked], setting: str, named: str
) -> None:
    baked = next(iter(matrix_bakes.values()))
    rendered = helm_template(
        baked.chart, str(baked.answers["aks_namespace"]), "values-prod.yaml", "--set", setting
    )

    assert rendered.returncode != 0
    assert named in rendered.stderr


def test_metrics_port_zero_turns_off_the_endpoint_and_everything_that_scrapes_it(
    matrix_bakes: dict[str, Baked],
) -> None:
    baked = next(iter(matrix_bakes.values()))
    everything = "metrics.port=0,metrics.podMonitor.enabled=true,metrics.prometheusRule.enabled=true,"
    rendered = helm_template(
        baked.chart,
        str(baked.answers["aks_namespace"]),
        "values-prod.yaml",
        "--set",
        everything + "metrics.grafanaDashboard.enabled=true",
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered.stdout) if doc}

    assert set(docs) == {
        "Deployment",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert "annotations" not in pod["metadata"]
    assert "metrics" not in {p["name"] for p in container["ports"]}
    assert {"name": "LIVEKIT_PLATFORM_METRICS_PORT", "value": "0"} in container["env"]
    assert len(docs["NetworkPolicy"]["spec"]["ingress"]) == 1


def test_dockerfile_is_hadolint_clean_and_runs_the_package_as_non_root(baked: Baked) -> None:
    dockerfile = baked.path / "Dockerfile"
    lint = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True, check=False)

    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = dockerfile.read_text()
    assert f'CMD ["python", "-m", "{baked.answers["package_name"]}", "start"]' in text
    assert "USER 10001:10001" in text
    assert f"ARG PYTHON_IMAGE=python:{baked.answers['python_version']}-slim-bookworm" in text
    assert "uv sync --locked" in text
    assert "download-files" in text
    assert ("COPY vendor/ ./vendor/" in text) == (baked.answers["sdk_source"] == "vendored")


def test_ci_configuration_lints_and_names_every_step(baked: Baked) -> None:
    system = baked.answers["ci_system"]
    if system == "github":
        workflow = baked.path / ".github" / "workflows" / "ci.yml"
        lint = subprocess.run(
            [tool("actionlint"), str(workflow)], capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        text = workflow.read_text()
        for needed in ("azure/login@", "id-token: write", "helm lint", "--atomic", "values-prod.yaml"):
            assert needed in text, needed
        assert not re.search(r"\$\{\{\s*secrets\.", text), "Azure access must use OIDC, not stored secrets"
    elif system == "azure_pipelines":
        pipeline = yaml.safe_load((baked.path / "azure-pipelines.yml").read_text())
        names = [
            step.get("displayName", "")
            for stage in pipeline["stages"]
            for job in stage["jobs"]
            for step in job.get("steps", [])
            or job.get("strategy", {}).get("runOnce", {}).get("deploy", {}).get("steps", [])
        ]
        for needed in (
            "Lint",
            "Test",
            "Helm lint",
            "Build and push",
            "Helm upgrade nonprod",
            "Helm upgrade prod",
        ):
            assert needed in names, (needed, names)
        assert "--atomic" in (baked.path / "azure-pipelines.yml").read_text()
    else:
        assert not (baked.path / ".github").exists()
        assert not (baked.path / "azure-pipelines.yml").exists()


def bicep_default(bicep: str, param: str) -> str:
    match = re.search(rf"^param {param} string = '([^']*)'$", bicep, re.MULTILINE)
    assert match, f"param {param} with a string default not found"
    return match.group(1)


def test_federated_credential_subject_is_the_charts_service_account(baked: Baked) -> None:
    bicep = (baked.path / "infra" / "main.bicep").read_text()
    subject_template = re.search(r"^var federationSubject = '([^']*)'$", bicep, re.MULTILINE)
    assert subject_template is not None
    subject = subject_template.group(1).replace("${namespace}", bicep_default(bicep, "namespace"))
    subject = subject.replace("${serviceAccountName}", bicep_default(bicep, "serviceAccountName"))
    account = manifests(baked, "values-prod.yaml")["ServiceAccount"]["metadata"]

    assert subject == f"system:serviceaccount:{baked.answers['aks_namespace']}:{account['name']}"
    assert account["namespace"] == baked.answers["aks_namespace"]
    assert "'api://AzureADTokenExchange'" in bicep
    assert "issuer: aksOidcIssuerUrl" in bicep


def test_generated_code_is_ruff_clean_with_its_own_config(baked: Baked) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    for check in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [str(ruff), *check], cwd=baked.path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
