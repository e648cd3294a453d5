"""checkov over the service's deploy kit: the chart as checkov renders it, the chart rendered for every case
of the values matrix, and the Bicep. One run (checkov takes tens of seconds to start)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.support import checkov
from tests.support.checkov import SKIP, without_graph_extension
from tests.support.deploy_kit import CASES, CHART, INFRA, case

FRAMEWORKS = ("helm", "kubernetes", "bicep")


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    scan = tmp_path_factory.mktemp("checkov")
    shutil.copytree(CHART, scan / "chart" / CHART.name)
    rendered = scan / "rendered"
    rendered.mkdir()
    for name in CASES:
        (rendered / f"{name}.yaml").write_text(case(name).stdout, encoding="utf-8")
    bicep = scan / "infra"
    shutil.copytree(INFRA, bicep)
    for path in bicep.glob("*.bicep"):
        without_graph_extension(path)
    return checkov.scan(scan, FRAMEWORKS, timeout=900)


def test_checkov_finds_no_failed_check_and_parses_everything(checkov_reports: list[dict[str, Any]]) -> None:
    failed, parsing_errors = checkov.failures(checkov_reports)

    assert failed == []
    assert parsing_errors == []


def test_checkov_scanned_the_chart_and_every_rendering(checkov_reports: list[dict[str, Any]]) -> None:
    reports = {report["check_type"]: report for report in checkov_reports if "check_type" in report}
    rendered_files = {
        check["file_path"].split("/")[-1] for check in reports["kubernetes"]["results"]["passed_checks"]
    }

    assert reports["helm"]["summary"]["passed"] > 100
    assert rendered_files == {f"{name}.yaml" for name in CASES}


def test_every_checkov_skip_in_the_deploy_kit_says_why() -> None:
    skips = [
        (path.name, *match.groups()[1:])
        for path in CHART.rglob("*")
        if path.is_file()
        for match in SKIP.finditer(path.read_text(encoding="utf-8"))
    ]

    assert skips, "the chart has no checkov skips to check"
    assert {check for _, check, _ in skips} <= {"CKV_K8S_15", "CKV_K8S_21", "CKV_K8S_35", "CKV_K8S_43"}
    unexplained = [(name, check) for name, check, reason in skips if len(reason.split()) < 5]
    assert unexplained == []
