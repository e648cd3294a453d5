"""The service's deploy kit as its tests see it: the chart rendered by the real helm, the linters that
`make template-tools` installs in .tools/, the Bicep as checkov's own parser reads it, and the defaults."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.support.checkov import GRAPH_EXTENSION
from tests.support.paths import REPO
from tests.support.tools import checkov_python, tool

CHART = REPO / "service" / "chart" / "lkps"
INFRA = REPO / "service" / "infra"
POLICY = INFRA / "apim" / "lkps-gateway-policy.xml"
KUBE_VERSION = "1.33.0"


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)


@cache
def install_namespace() -> str:
    """The namespace service/infra/README.md installs the chart into (and federates)."""
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    found = re.search(r"helm upgrade --install lkps service/chart/lkps -n (\S+)", readme)
    assert found, "service/infra/README.md has no `helm upgrade --install lkps service/chart/lkps -n <ns>`"
    return found.group(1)


@cache
def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


@dataclass(frozen=True)
class Rendered:
    """One `helm template` of the chart: its exit status, its error output and its manifests."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]

    def kinds(self) -> list[str]:
        return [doc["kind"] for doc in self.docs]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [doc for doc in self.all(kind) if name is None or doc["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]


def _as_key(values: Mapping[str, Any] | None) -> str:
    return json.dumps(values or {}, sort_keys=True)


@cache
def _render(values_json: str, files: tuple[str, ...], command: str) -> Rendered:
    with tempfile.TemporaryDirectory() as tmp:
        overrides = Path(tmp) / "overrides.yaml"
        overrides.write_text(yaml.safe_dump(json.loads(values_json)), encoding="utf-8")
        args = [f"-f={CHART / name}" for name in files] + [f"-f={overrides}"]
        if command == "lint":
            result = run(
                [tool("helm"), "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, *args]
            )
        else:
            namespace = install_namespace()
            result = run(
                [
                    tool("helm"),
                    "template",
                    "lkps",
                    str(CHART),
                    f"--namespace={namespace}",
                    "--kube-version",
                    KUBE_VERSION,
                    *args,
                ]
            )
    return Rendered(result.returncode, result.stdout, result.stderr)


def render(values: Mapping[str, Any] | None = None, files: tuple[str, ...] = ()) -> Rendered:
    """`helm template` with the chart's values.yaml, then each of ``files`` (beside it), then ``values``."""
    return _render(_as_key(values), files, "template")


def lint(values: Mapping[str, Any] | None = None, files: tuple[str, ...] = ()) -> Rendered:
    return _render(_as_key(values), files, "lint")


def env_of(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def server_container(rendered: Rendered) -> dict[str, Any]:
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def image_test_repository() -> str:
    """The repository name tests/image/test_service_image.py tags the image `make test-image` builds."""
    module = ast.parse((REPO / "tests" / "image" / "test_service_image.py").read_text(encoding="utf-8"))
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "TAG" for target in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            tag = str(node.value.value)
            return tag.rsplit(":", 1)[0]
    raise AssertionError("tests/image/test_service_image.py defines no TAG")


_PARSE_BICEP = """
import json, pathlib, sys
from pycep import BicepParser
text = pathlib.Path(sys.argv[1]).read_text()
text = "\\n".join(line for line in text.splitlines() if line.strip() != sys.argv[2])
print(json.dumps(BicepParser().parse(text=text), default=str))
"""


@cache
def parse_bicep(path: Path) -> dict[str, Any]:
    """``path`` as checkov's parser (pycep) reads it, the Graph extension line aside."""
    result = run([checkov_python(), "-c", _PARSE_BICEP, str(path), GRAPH_EXTENSION])
    assert result.returncode == 0, result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


# The chart's values matrix: every case is linted, rendered and validated, and scanned by checkov.
GATEWAY_SECRET_KEY = {"existingSecret": {"keys": {"gatewaySharedSecret": "LKPS_GATEWAY_SHARED_SECRET"}}}
KEY_VAULT = {"source": "keyVault", "keyVault": {"name": "kv-lkps"}}
DIGEST = "sha256:" + "ab" * 32

# name -> (values files beside values.yaml, overrides)
CASES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "defaults": ((), {}),
    "nonprod": (("values-nonprod.yaml",), {}),
    "prod": (("values-prod.yaml",), {}),
    "gateway-existing-secret": ((), {"identity": {"mode": "gateway"}, "secrets": GATEWAY_SECRET_KEY}),
    "gateway-key-vault": (
        (),
        {
            "identity": {"mode": "gateway"},
            "secrets": {
                "source": "keyVault",
                "keyVault": {
                    "name": "kv-lkps",
                    "objects": {"gatewaySharedSecret": "lkps-gateway-shared-secret"},
                },
            },
        },
    ),
    "key-vault": ((), {"secrets": KEY_VAULT}),
    "service-monitor": (
        (),
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}}},
    ),
    "azure-managed-prometheus": (
        (),
        {"metrics": {"serviceMonitor": {"enabled": True, "apiVersion": "azmonitoring.coreos.com/v1"}}},
    ),
    "metrics-port": (
        (),
        {"metrics": {"port": 9090, "podAnnotations": True, "serviceMonitor": {"enabled": True}}},
    ),
    "hpa-off": ((), {"autoscaling": {"enabled": False}, "replicaCount": 3}),
    "one-replica-without-pdb": (
        (),
        {"autoscaling": {"enabled": False}, "replicaCount": 1, "podDisruptionBudget": {"enabled": False}},
    ),
    "no-network-policy-no-migration": (
        (),
        {"networkPolicy": {"enabled": False}, "migration": {"enabled": False}},
    ),
    "telemetry-and-extras": (
        (),
        {
            "telemetry": {"otlpEndpoint": "http://otel-collector.observability.svc.cluster.local:4318"},
            "tokens": {"agentTtlSeconds": 900, "participantTtlSeconds": 300},
            "livekit": {"healthUrl": "http://livekit.livekit.svc.cluster.local:7880"},
            "extraEnv": [
                {"name": "LKPS_GRAPH_CACHE_TTL", "value": "600"},
                {
                    "name": "LKPS_GRAPH_CLIENT_SECRET",
                    "valueFrom": {"secretKeyRef": {"name": "g", "key": "s"}},
                },
            ],
            "image": {"digest": DIGEST},
            "topologySpread": {"whenUnsatisfiable": "DoNotSchedule"},
        },
    ),
}


def case(name: str) -> Rendered:
    files, values = CASES[name]
    return render(values, files)
