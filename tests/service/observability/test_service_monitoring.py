"""The service chart's monitoring: the Grafana dashboard and the alert rules use only metrics a real running
service exports (scraped from its ``/metrics``), every exported metric has a panel, the rules are well formed
and scoped to the release, and each resource follows its values toggle and the schema."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from lkps.settings import Settings
from tests.support.deploy_kit import CHART, Rendered, install_namespace, render, run
from tests.support.promql import assert_well_formed_rule, dashboard_queries, metric_names, served_names
from tests.support.service import client_headers, gateway_headers, new_agent_id, served_app
from tests.support.tools import tool

ALL_ON: dict[str, Any] = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}

# -- PromQL metric names (tests/support/promql.py) -----------------------------------------------------------


def test_the_tokenizer_finds_the_selected_names_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{job="x", route!~"u|/m"}[5m]))) > 1'
        ' and on (pod) absent(b{x="by (y)"}) or sum(c_total) / sum(rate(d_count[5m])) > 0.05'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c_total", "d_count"}
    assert metric_names('label_values(e{namespace="$namespace"}, pod)') == {"e"}


# -- the chart, rendered ------------------------------------------------------------------------------------


def chart(values: dict[str, Any] | None = None) -> Rendered:
    rendered = render(ALL_ON if values is None else values)
    assert rendered.returncode == 0, rendered.stderr
    return rendered


def dashboard_of(rendered: Rendered) -> dict[str, Any]:
    (text,) = rendered.one("ConfigMap", "lkps-dashboard")["data"].values()
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


def rules_of(rendered: Rendered) -> list[dict[str, Any]]:
    return [rule for group in rendered.one("PrometheusRule")["spec"]["groups"] for rule in group["rules"]]


@pytest.fixture
async def exported(settings: Settings) -> dict[str, str]:
    """What a running service's ``GET /metrics`` serves after some traffic (uvicorn on a loopback port)."""
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        agent = new_agent_id()
        await client.post("/api/agent/register", json={}, headers=gateway_headers(client_id=agent))
        await client.post("/api/session/start", json={"agent_entra_app_id": agent}, headers=client_headers())
        await client.post("/livekit/webhook", content=b"{}", headers={"Authorization": "forged"})
        response = await client.get("/metrics")
    assert response.status_code == 200
    return served_names(response.text)


def test_every_metric_the_dashboard_and_the_alert_rules_use_is_one_the_service_exports(
    exported: dict[str, str],
) -> None:
    rendered = chart()
    used_by: dict[str, set[str]] = {"dashboard": set(), "alert rules": set()}
    for query in dashboard_queries(dashboard_of(rendered)):
        used_by["dashboard"] |= metric_names(query)
    for rule in rules_of(rendered):
        used_by["alert rules"] |= metric_names(rule["expr"])

    for where, used in used_by.items():
        assert used, f"no metric found in the {where}: the tokenizer or the file is broken"
        assert used - exported.keys() == set(), f"the {where} use metrics the service does not export"
    # (the exposition declares each counter's start time as a gauge family of its own: not a metric to show)
    families = {f for f in exported.values() if f.startswith("lkps_") and not f.endswith("_created")}
    shown = {exported[name] for name in used_by["dashboard"]}
    assert families - shown == set(), "every lkps_ metric has a panel"


def test_the_alert_rules_are_well_formed_and_scoped_to_the_release() -> None:
    namespace = install_namespace()
    rules = rules_of(chart())

    assert [rule["alert"] for rule in rules] == [
        "LkpsMetricsAbsent",
        "LkpsServerErrors",
        "LkpsSlowRequests",
        "LkpsAuditLagging",
        "LkpsAuditRecordsDropped",
        "LkpsDatabaseErrors",
        "LkpsGraphFailing",
        "LkpsWebhooksNotStored",
        "LkpsRefusalsSurge",
        "LkpsConnectionLimit",
    ]
    for rule in rules:
        assert re.search(r"\{[^{}]*\}", rule["expr"]), rule["alert"]
        assert_well_formed_rule(rule, selectors_hold=(f'namespace="{namespace}"', 'job="lkps"'))
    lagging = next(rule for rule in rules if rule["alert"] == "LkpsAuditLagging")
    assert lagging["expr"].endswith("> 60")
    tuned = {
        "metrics": {**ALL_ON["metrics"], "prometheusRule": {"enabled": True, "auditLagThresholdSeconds": 300}}
    }
    retuned = next(rule for rule in rules_of(chart(tuned)) if rule["alert"] == "LkpsAuditLagging")
    assert retuned["expr"].endswith("> 300")


def test_the_refusals_alert_names_every_authentication_reason_the_service_has() -> None:
    """The reasons a rejected token, role, webhook signature or worker connection is refused with, from the
    code's own text."""
    rule = next(rule for rule in rules_of(chart()) if rule["alert"] == "LkpsRefusalsSurge")
    (alternatives,) = re.findall(r'reason=~"([^"]+)"', rule["expr"])
    sources = [
        CHART.parents[1] / "src" / "lkps" / "auth" / name
        for name in ("entra.py", "identity.py", "webhooks.py", "gateway.py")
    ]
    code = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    entra = sources[0].read_text(encoding="utf-8")
    # reason="..." keywords, and the last argument of entra.py's _unauthorized(detail, reason) calls
    reasons = set(re.findall(r'reason="([a-z_]+)"', code)) | set(re.findall(r',\s*"([a-z_]+)",?\s*\)', entra))
    assert reasons, "no reason found in lkps.auth: the pattern is broken"
    # and the relay's (worker connections on /agent): its reason constants
    relay = (CHART.parents[1] / "src" / "lkps" / "relay" / "agent_tokens.py").read_text(encoding="utf-8")
    relay_reasons = set(re.findall(r'^[A-Z_]+ = "(agent_[a-z_]+)"$', relay, re.MULTILINE))
    assert len(relay_reasons) == 8, "the relay's reasons: the pattern is broken"
    reasons |= relay_reasons
    assert set(alternatives.split("|")) == reasons


def test_monitoring_resources_follow_their_toggles_and_the_schema() -> None:
    default = chart({})
    assert not {"ServiceMonitor", "PrometheusRule", "ConfigMap"} & set(default.kinds()), (
        "off by default: CRDs"
    )

    rendered = chart(
        {
            "metrics": {
                "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Platform"}},
            }
        }
    )
    assert rendered.one("PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    config_map = rendered.one("ConfigMap", "lkps-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "Platform"
    dashboard = dashboard_of(rendered)
    assert dashboard == json.loads((CHART / "dashboards" / "lkps.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] == "livekit-platform-service"
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"${datasource}"}
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])

    for bad in ({"serverErrorRatio": 2}, {"auditLagThresholdSeconds": 0}, {"alertOnEverything": True}):
        refused = render({"metrics": {"prometheusRule": bad}})
        assert refused.returncode != 0, bad
        assert "values don't meet the specifications of the schema" in refused.stderr, bad


def test_the_dashboard_configmap_is_valid_kubernetes(tmp_path: Any) -> None:
    manifest = tmp_path / "dashboard.yaml"
    config_map = chart().one("ConfigMap", "lkps-dashboard")
    manifest.write_text(json.dumps(config_map), encoding="utf-8")
    result = run([tool("kubernetes-validate"), "--strict", "-k", "1.33.0", str(manifest)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed for resource configmap/" in result.stdout
