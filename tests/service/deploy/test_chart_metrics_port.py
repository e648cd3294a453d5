"""The service chart's separate metrics port (``metrics.port``, ``LKPS_METRICS_PORT``): the container and the
Service expose it, the ServiceMonitor and the pod annotations scrape it, the NetworkPolicy admits Prometheus
on it and nobody else, the service accepts the environment, and the schema refuses bad ports. The case
``metrics-port`` is in the chart's values matrix (tests/support/deploy_kit.py): linted, validated by
kubernetes-validate and scanned by checkov with the others."""

from __future__ import annotations

from typing import Any

import pytest

from lkps.settings import Settings
from tests.support.deploy_kit import CASES, case, env_of, render, server_container

MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def ingress(rendered: Any) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = rendered.one("NetworkPolicy", "lkps")["spec"]["ingress"]
    return rules


def test_a_metrics_port_is_exposed_scraped_and_admitted_for_prometheus_only() -> None:
    port = CASES["metrics-port"][1]["metrics"]["port"]
    rendered = case("metrics-port")
    container = server_container(rendered)
    pod = rendered.one("Deployment")["spec"]["template"]
    service = rendered.one("Service")
    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]

    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": port, "protocol": "TCP"},
    ]
    assert env_of(container)["LKPS_METRICS_PORT"] == {"name": "LKPS_METRICS_PORT", "value": str(port)}
    assert {"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"} in service["spec"][
        "ports"
    ]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    # Prometheus reaches the metrics port and nothing else; nobody else reaches it
    for rule in ingress(rendered):
        ports = [p["port"] for p in rule["ports"]]
        assert ports == ([port] if rule["from"] == [MONITORING] else [8080]), rule
    assert [MONITORING] in [rule["from"] for rule in ingress(rendered)]


def test_without_a_metrics_port_everything_stays_on_the_service_port() -> None:
    rendered = case("defaults")
    container = server_container(rendered)
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert "LKPS_METRICS_PORT" not in env_of(container)
    assert "annotations" not in rendered.one("Deployment")["spec"]["template"]["metadata"]

    annotated = render({"metrics": {"podAnnotations": True}})
    assert annotated.returncode == 0, annotated.stderr
    annotations = annotated.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8080"
    # pods scraped by annotation: Prometheus is admitted, on the service port
    assert {"from": [MONITORING], "ports": [{"protocol": "TCP", "port": 8080}]} in ingress(annotated)
    assert [MONITORING] not in [rule["from"] for rule in ingress(rendered)]
    # pod annotations of the user's are kept beside them
    both = render({"metrics": {"podAnnotations": True}, "podAnnotations": {"team": "platform"}})
    assert both.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["team"] == "platform"


def test_the_service_accepts_the_environment_with_a_metrics_port() -> None:
    env = env_of(server_container(case("metrics-port")))
    given = {variable: entry["value"] for variable, entry in env.items() if "value" in entry}
    given |= {
        "LIVEKIT_API_KEY": "APIlkps",
        "LIVEKIT_API_SECRET": "s" * 40,
        "LKPS_AGENT_TOKEN_SECRET": "a" * 40,
        "LKPS_DATABASE_URL": "postgresql://lkps:pw@db.example.com:5432/lkps",
    }

    settings = Settings.from_env(given)

    assert settings.metrics_port == CASES["metrics-port"][1]["metrics"]["port"]


REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "the service's own port": ({"metrics": {"port": 8080}}, "port"),
    "a port past 65535": ({"metrics": {"port": 70000}}, "port"),
    "a negative port": ({"metrics": {"port": -1}}, "port"),
    "a port as a string": ({"metrics": {"port": "9090"}}, "port"),
    "annotations that are not a switch": ({"metrics": {"podAnnotations": "yes"}}, "podAnnotations"),
    "the variable in extraEnv": (
        {"extraEnv": [{"name": "LKPS_METRICS_PORT", "value": "9090"}]},
        "extraEnv/0",
    ),
}


@pytest.mark.parametrize("values", REJECTED.values(), ids=REJECTED.keys())
def test_bad_metrics_ports_are_refused_naming_the_value(values: tuple[dict[str, Any], str]) -> None:
    overrides, named = values
    rendered = render(overrides)

    assert rendered.returncode != 0
    assert "values don't meet the specifications of the schema" in rendered.stderr
    assert named in rendered.stderr
