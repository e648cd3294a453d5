"""What the charts' dashboards and alert rules use, against what a process exports: the metric names a
PromQL expression selects (by a small tokenizer), a Grafana dashboard's queries, and the sample names a
Prometheus exposition serves; and the shape every alert rule of the charts has. Shared by the service
chart's and the agent chart's monitoring tests."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w:.$])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_KEYWORDS |= {"offset", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana ``label_values(expr, label)`` query) selects:
    every name that is not a function, aggregation, keyword, label or string."""
    grafana = _LABEL_VALUES.match(expr)
    text = grafana.group(1) if grafana else expr
    text = _STRINGS.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() not in _KEYWORDS:
            names.add(match.group(0))
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every query of a Grafana dashboard: its panels' targets and its query variables."""
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def served_names(exposition: str) -> dict[str, str]:
    """Every sample name the exposition holds or its families would hold (a family without samples yet
    included), to its family's name."""
    names = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            names[sample.name] = family.name
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = family.name
    return names


def assert_well_formed_rule(rule: dict[str, Any], *, selectors_hold: tuple[str, ...]) -> None:
    """A Prometheus alert rule as the charts write them: only the known keys, a severity, a summary and a
    description, a valid ``for``, balanced parentheses, and every selector holding each of
    ``selectors_hold`` (the release's scope)."""
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"], rule["alert"]
    assert rule["annotations"]["description"], rule["alert"]
    assert re.fullmatch(r"([0-9]+(ms|s|m|h|d))+", rule.get("for", "0s")), rule["alert"]
    assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    for selector in re.findall(r"\{[^{}]*\}", rule["expr"]):
        for needed in selectors_hold:
            assert needed in selector, rule["alert"]
