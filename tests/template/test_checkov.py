"""checkov over the chart, Dockerfile, Bicep and CI files of bakes covering every exporter and CI system.

checkov is slow (tens of seconds per start), so it runs once, over copies of the distinct artefact sets.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.support import checkov
from tests.support.baking import Baked
from tests.support.checkov import SKIP, without_graph_extension
from tests.support.paths import REPO

ARTEFACTS = ("Dockerfile", "charts", "infra", ".github", "azure-pipelines.yml")
FRAMEWORKS = ("helm", "dockerfile", "bicep", "github_actions", "azure_pipelines")


def distinct_artefact_bakes(matrix_bakes: dict[str, Baked]) -> list[Baked]:
    """The fewest bakes whose exporters, CI systems and SDK sources together cover every choice."""
    wanted = (
        {("telemetry_exporter", value) for value in ("otlp", "azure_monitor", "none")}
        | {("ci_system", value) for value in ("github", "azure_pipelines")}
        | {("sdk_source", value) for value in ("git", "package", "vendored")}
        | {("agent_identity", value) for value in ("app_registration", "managed_identity")}
    )
    chosen: list[Baked] = []
    for baked in matrix_bakes.values():
        covers = {(key, baked.answers[key]) for key, _ in wanted} & wanted
        if covers:
            chosen.append(baked)
            wanted -= covers
    assert not wanted, f"the matrix has no bake for {wanted}"
    return chosen


@pytest.fixture(scope="module")
def checkov_reports(
    matrix_bakes: dict[str, Baked], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    scan = tmp_path_factory.mktemp("checkov")
    for baked in distinct_artefact_bakes(matrix_bakes):
        target = scan / baked.path.parent.name
        target.mkdir()
        for name in ARTEFACTS:
            source = baked.path / name
            if source.is_dir():
                shutil.copytree(source, target / name)
            elif source.exists():
                shutil.copy2(source, target / name)
        without_graph_extension(target / "infra" / "main.bicep")
    return checkov.scan(scan, FRAMEWORKS, timeout=600)


def test_checkov_finds_no_failed_check(checkov_reports: list[dict[str, Any]]) -> None:
    failed, parsing_errors = checkov.failures(checkov_reports)

    assert failed == []
    assert parsing_errors == []


def test_checkov_scanned_every_artefact_kind(checkov_reports: list[dict[str, Any]]) -> None:
    passed = {
        report["check_type"] for report in checkov_reports if report.get("summary", {}).get("passed", 0)
    }

    # Bicep: checkov has no check for managed identities; the parse is covered by "no parsing error"
    assert {"helm", "dockerfile", "github_actions", "azure_pipelines"} <= passed


def test_every_checkov_skip_in_the_template_says_why() -> None:
    skips = []
    for path in (REPO / "{{cookiecutter.agent_slug}}").rglob("*"):
        if path.is_file() and "vendor" not in path.parts:
            skips += [(path.name, *m.groups()[1:]) for m in SKIP.finditer(path.read_text(encoding="utf-8"))]

    assert skips, "the template has no checkov skips to check"
    unexplained = [(name, check) for name, check, reason in skips if len(reason.split()) < 5]
    assert unexplained == []
