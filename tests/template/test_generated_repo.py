"""A repo created the documented way (`cruft create` from a release tag) passes its own CI checks and
`make setup && make test` with no manual step, the SDK from this checkout (representative answers).

Each run is a real `uv sync` of the generated project (uv's cache keeps it fast after the first time); the
cheaper static checks in test_matrix.py cover the whole matrix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.baking import REQUIRED_ANSWERS
from tests.support.generated_repo import run
from tests.support.paths import SDK_DIR
from tests.support.template_repo import TemplateRepo, init_project

# The default answers (the SDK from the template's git tag) run in test_sdk_sources.py, from the getting-
# started commands; `package` runs there too, against a real index.
REPRESENTATIVE = {
    # the vendored SDK, the realtime pipeline, Azure Monitor, Azure Pipelines, another Python, a managed
    # identity
    "vendored-realtime-azure-monitor": {
        "sdk_source": "vendored",
        "plugins": "openai-realtime",
        "telemetry_exporter": "azure_monitor",
        "ci_system": "azure_pipelines",
        "python_version": "3.13",
        "enforce_client_authz": False,
        "agent_identity": "managed_identity",
    },
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    return TemplateRepo.first_release(tmp_path_factory.mktemp("release") / "template", "0.1.0")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("answers", REPRESENTATIVE.values(), ids=REPRESENTATIVE.keys())
def test_a_created_repo_passes_its_own_ci_checks_and_make_test(
    template: TemplateRepo, tmp_path: Path, answers: dict[str, object]
) -> None:
    answers_file = tmp_path / "answers.json"
    answers_file.write_text(json.dumps({**REQUIRED_ANSWERS, "_sdk_path": str(SDK_DIR), **answers}))
    created = run(
        [
            *(sys.executable, "-m", "cruft", "create", str(template.path), "--checkout", "v0.1.0"),
            *("--no-input", "--extra-context-file", str(answers_file), "--output-dir", str(tmp_path)),
        ],
        tmp_path,
        timeout=300,
    )
    assert created.returncode == 0, created.stdout[-4000:] + created.stderr[-4000:]
    (repo,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    init_project(repo)

    # the CI's first step, then what the README asks a developer to run
    leftovers = run([sys.executable, "scripts/check_template_update.py"], repo, timeout=60)
    assert leftovers.returncode == 0, leftovers.stderr
    for target in ("setup", "test"):
        made = run(["make", target], repo, timeout=600)
        assert made.returncode == 0, f"make {target}:\n{made.stdout[-6000:]}{made.stderr[-3000:]}"
    assert (repo / "uv.lock").is_file(), "make setup locks the generated repo"
