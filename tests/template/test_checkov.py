"""checkov over the chart, Dockerfile, Bicep and CI files of bakes covering every exporter and CI system.

checkov is slow (tens of seconds per start), so it runs once, over copies of the distinct artefact sets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.support.baking import Baked
from tests.support.paths import REPO, TOOLS_BIN
from tests.support.tools import tool

ARTEFACTS = ("Dockerfile", "charts", "infra", ".github", "azure-pipelines.yml")
# Bicep's `extension` statement (Bicep 0.30) postdates checkov's Bicep parser (pycep): that one line is left
# out of what checkov reads (tests/template/test_identity_infra.py checks it is there).
GRAPH_EXTENSION = "extension microsoftGraphV1"
FRAMEWORKS = ("helm", "dockerfile", "bicep", "github_actions", "azure_pipelines")
SKIP = re.compile(r"(checkov:skip=|checkov\.io/skip\d+: )(CKV\w+)[=:]\s*(.*)")


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
        bicep = target / "infra" / "main.bicep"
        lines = bicep.read_text(encoding="utf-8").splitlines()
        bicep.write_text("\n".join(line for line in lines if line.strip() != GRAPH_EXTENSION) + "\n")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "PATH": f"{TOOLS_BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [tool("checkov"), "-d", str(scan), "--framework", *FRAMEWORKS, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    parsed = json.loads(result.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def test_checkov_finds_no_failed_check(checkov_reports: list[dict[str, Any]]) -> None:
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
