"""checkov over the service's deploy kit: the chart as checkov renders it, the chart rendered for every case
of the values matrix, and the Bicep. One run (checkov takes tens of seconds to start)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.support.deploy_kit import CASES, CHART, GRAPH_EXTENSION, INFRA, case
from tests.support.paths import TOOLS_BIN
from tests.support.tools import tool

FRAMEWORKS = ("helm", "kubernetes", "bicep")
SKIP = re.compile(r"(checkov:skip=|checkov\.io/skip\d+: )(CKV\w+)[=:]\s*(.*)")


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
    # pycep (checkov's Bicep parser) predates the `extension` statement; the rest of the file is scanned as is
    for path in bicep.glob("*.bicep"):
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(line for line in lines if line.strip() != GRAPH_EXTENSION) + "\n")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "PATH": f"{TOOLS_BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [tool("checkov"), "-d", str(scan), "--framework", *FRAMEWORKS, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    parsed = json.loads(result.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def test_checkov_finds_no_failed_check_and_parses_everything(checkov_reports: list[dict[str, Any]]) -> None:
    failed = [
        f"{report['check_type']}: {check['check_id']} {check['resource']} ({check['file_path']})"
        for report in checkov_reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    parsing_errors = [
        error for report in checkov_reports for error in report.get("results", {}).get("parsing_errors", [])
    ]

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
