"""The chart's monitoring: the Grafana dashboard and the alert rules use only metrics a real worker exports
(scraped from livekit-agents' Prometheus endpoint of an SDK worker on the stand-ins), the rules are well
formed and scoped to the release, and each resource follows its values toggle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.processes import free_port
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import Tenant
from tests.support.baking import Baked, helm_template
from tests.support.paths import REPO
from tests.support.promql import assert_well_formed_rule, dashboard_queries, metric_names, served_names
from tests.support.tools import tool

AGENT = REPO / "tests" / "sdk" / "agents" / "platform_agent.py"
ALL_ON = ",".join(
    f"metrics.{toggle}.enabled=true" for toggle in ("podMonitor", "prometheusRule", "grafanaDashboard")
)
SDK_METRICS = {
    "livekit_platform_registration_duration_seconds_bucket",
    "livekit_platform_renewals_total",
    "livekit_platform_renewal_failures_total",
    "livekit_platform_token_expires_in_seconds",
    "livekit_platform_worker_registered",
}

# -- PromQL metric names (tests/support/promql.py) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "histogram_quantile(0.95, sum by (le, call) "
            '(rate(a_bucket{pod=~"$pod", x="by (y)"}[$__rate_interval])))',
            {"a_bucket"},
        ),
        ("(sum(up{job='x'}) or vector(0)) == 0 and on (pod) b_total offset 5m", {"up", "b_total"}),
        ("sum(rate(c_total[5m])) by (reason) / ignoring(reason) group_left d", {"c_total", "d"}),
        ('label_values(e_seconds{namespace="$namespace"}, pod)', {"e_seconds"}),
        ("time() - f_timestamp_seconds > 3600", {"f_timestamp_seconds"}),
    ],
)
def test_metric_names_are_what_the_expression_selects(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# -- the chart's dashboard and rules, as rendered ------------------------------------------------------------


def render(baked: Baked, *settings: str) -> dict[str, dict[str, Any]]:
    extra = [arg for setting in settings for arg in ("--set", setting)]
    rendered = helm_template(baked.chart, str(baked.answers["aks_namespace"]), "values-prod.yaml", *extra)
    assert rendered.returncode == 0, rendered.stderr
    return {doc["kind"]: doc for doc in yaml.safe_load_all(rendered.stdout) if doc}


def dashboard_of(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (text,) = docs["ConfigMap"]["data"].values()
    dashboard = json.loads(text)
    assert isinstance(dashboard, dict)
    return dashboard


def rules_of(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in docs["PrometheusRule"]["spec"]["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def baked(matrix_bakes: dict[str, Baked]) -> Baked:
    return next(iter(matrix_bakes.values()))


# -- a real worker's metrics ---------------------------------------------------------------------------------


@pytest.fixture
def exported(
    entra_standin: EntraStandIn,
    livekit_standin: LiveKitStandIn,
    platform_standin: PlatformStandIn,
    tenant: Tenant,
    tmp_path: Path,
) -> Iterator[set[str]]:
    """Every sample name (and every name a family without samples yet would have) that livekit-agents'
    Prometheus endpoint of an SDK worker serves, once the worker is registered with LiveKit."""
    app = tenant.add_agent("metrics agent")
    port = free_port()
    keep = ("LIVEKIT_", "AZURE_", "OTEL_", "IDENTITY_", "MSI_", "PROMETHEUS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
    env |= entra_standin.service_principal_env(app.app_id, app.secret)
    env |= {
        "LIVEKIT_PLATFORM_URL": platform_standin.url,
        "LIVEKIT_PLATFORM_SCOPE": platform_standin.scope,
        "LIVEKIT_PLATFORM_READINESS_PORT": "0",
        "LIVEKIT_PLATFORM_METRICS_PORT": str(port),
        "AGENT_TEST_OUTPUT": str(tmp_path / "jobs.jsonl"),
    }
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [sys.executable, str(AGENT), "start"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        livekit_standin.wait_for_worker(app.app_id, timeout=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield set(served_names(text))
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(timeout=10)
        log.close()


def test_every_metric_the_dashboard_and_the_alert_rules_use_is_one_a_real_worker_exports(
    baked: Baked, exported: set[str]
) -> None:
    docs = render(baked, ALL_ON)
    used_by = {"dashboard": set(), "alert rules": set()}
    for query in dashboard_queries(dashboard_of(docs)):
        used_by["dashboard"] |= metric_names(query)
    for rule in rules_of(docs):
        used_by["alert rules"] |= metric_names(rule["expr"])

    assert exported >= SDK_METRICS, "the worker exports the SDK's metrics"
    for where, used in used_by.items():
        assert used, f"no metric found in the {where}: the tokenizer or the file is broken"
        assert used - exported == set(), f"the {where} use metrics no worker exports"
    assert used_by["dashboard"] >= SDK_METRICS, "every SDK metric has a panel"


def test_the_alert_rules_are_well_formed_and_scoped_to_the_release(baked: Baked) -> None:
    namespace = baked.answers["aks_namespace"]
    docs = render(baked, ALL_ON)
    rules = rules_of(docs)
    alerts = [rule["alert"] for rule in rules]

    assert alerts == [
        "LiveKitAgentPlatformTokenExpiring",
        "LiveKitAgentRenewalsFailing",
        "LiveKitAgentWorkerNotRegistered",
        "LiveKitAgentNoWorkerRegistered",
    ]
    for rule in rules:
        assert_well_formed_rule(rule, selectors_hold=(f'namespace="{namespace}"', 'pod=~"agent-'))
    expiring = rules[0]
    assert expiring["expr"].endswith("< 120")
    assert render(baked, ALL_ON, "metrics.prometheusRule.tokenExpiryThresholdSeconds=300")["PrometheusRule"][
        "spec"
    ]["groups"][0]["rules"][0]["expr"].endswith("< 300")


def test_monitoring_resources_follow_their_toggles(baked: Baked, tmp_path: Path) -> None:
    default = render(baked)
    assert not {"PodMonitor", "PrometheusRule", "ConfigMap"} & set(default), "off by default: they need CRDs"

    docs = render(
        baked,
        ALL_ON,
        "metrics.podMonitor.apiVersion=azmonitoring.coreos.com/v1",
        "metrics.podMonitor.labels.release=kube-prometheus-stack",
        "metrics.grafanaDashboard.annotations.grafana_folder=Agents",
    )
    monitor = docs["PodMonitor"]
    assert monitor["apiVersion"] == "azmonitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    assert monitor["spec"]["selector"]["matchLabels"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    config_map = docs["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Agents"}
    dashboard = dashboard_of(docs)
    assert dashboard["uid"] == "livekit-platform-agent"
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"${datasource}"}

    manifest = tmp_path / "all.yaml"
    manifest.write_text(yaml.safe_dump_all(docs.values()))
    validate = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", "1.33.0", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "passed for resource configmap/" in validate.stdout


def test_the_dashboard_file_in_the_template_is_the_one_the_chart_ships(baked: Baked) -> None:
    template = REPO / "{{cookiecutter.agent_slug}}" / "charts" / "{{cookiecutter.agent_slug}}" / "dashboards"
    shipped = baked.chart / "dashboards" / "agent.json"
    assert shipped.read_text() == (template / "agent.json").read_text(), "copied without rendering"
    assert dashboard_of(render(baked, ALL_ON)) == json.loads(shipped.read_text())
