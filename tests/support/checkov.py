"""checkov as both checkov suites run it (the template's artefacts, the service's deploy kit): one run over a
folder of copies, its JSON reports, what failed, and the skip comments that must each say why."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.paths import TOOLS_BIN
from tests.support.tools import tool

# Bicep's `extension` statement (Bicep 0.30) postdates checkov's Bicep parser (pycep): that one line is left
# out of what checkov reads (the infra tests check it is there).
GRAPH_EXTENSION = "extension microsoftGraphV1"
SKIP = re.compile(r"(checkov:skip=|checkov\.io/skip\d+: )(CKV\w+)[=:]\s*(.*)")


def without_graph_extension(bicep: Path) -> None:
    """Drop the Graph extension statement from ``bicep`` (a copy) so that pycep parses the rest as is."""
    lines = bicep.read_text(encoding="utf-8").splitlines()
    bicep.write_text("\n".join(line for line in lines if line.strip() != GRAPH_EXTENSION) + "\n")


def scan(folder: Path, frameworks: Sequence[str], *, timeout: float) -> list[dict[str, Any]]:
    """checkov's reports (one per framework) for everything below ``folder``, offline."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "PATH": f"{TOOLS_BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        [tool("checkov"), "-d", str(folder), "--framework", *frameworks, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=timeout,
    )
    parsed = json.loads(result.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def failures(reports: list[dict[str, Any]]) -> tuple[list[str], list[Any]]:
    """Every failed check (framework, check, resource, file) and every file checkov could not parse."""
    failed = [
        f"{report['check_type']}: {check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    parsing_errors = [
        error for report in reports for error in report.get("results", {}).get("parsing_errors", [])
    ]
    return failed, parsing_errors
