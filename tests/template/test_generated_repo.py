"""The generated repo's own ruff and pytest pass with the SDK from this checkout (a few representative bakes).

Each run is a real `uv sync` of the generated project (uv's cache keeps it fast after the first time); the
cheaper static checks in test_matrix.py cover the whole matrix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Baker, uv_binary

REPRESENTATIVE = {
    # the default answers: package SDK (path source to this checkout), OpenAI + Silero, OTLP, GitHub
    "package-defaults": {},
    # the other SDK source, the realtime pipeline, Azure Monitor, Azure Pipelines, another Python
    "vendored-realtime-azure-monitor": {
        "sdk_source": "vendored",
        "plugins": "openai-realtime",
        "telemetry_exporter": "azure_monitor",
        "ci_system": "azure_pipelines",
        "python_version": "3.13",
        "enforce_client_authz": False,
    },
}


def generated_env() -> dict[str, str]:
    # the generated repo gets a clean slate: no workspace venv, no machine LiveKit/Azure/OTEL settings, and no
    # pyenv pin inherited from a shim (the generated .python-version must pick the interpreter)
    drop = (
        "LIVEKIT_",
        "AZURE_",
        "OTEL_",
        "VIRTUAL_ENV",
        "UV_PROJECT_ENVIRONMENT",
        "PYENV_VERSION",
        "PYENV_DIR",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop)}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=generated_env(), capture_output=True, text=True, check=False, timeout=timeout
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("answers", REPRESENTATIVE.values(), ids=REPRESENTATIVE.keys())
def test_generated_repo_passes_its_own_lint_and_tests(
    baker: Baker, tmp_path: Path, answers: dict[str, object]
) -> None:
    baked = baker.bake(**answers)
    repo = tmp_path / baked.path.name
    shutil.copytree(baked.path, repo)
    uv = uv_binary()

    sync = run([uv, "sync"], repo, timeout=600)
    assert sync.returncode == 0, sync.stderr[-4000:]
    for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        lint = run([uv, "run", "--no-sync", *check], repo, timeout=120)
        assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]
    tests = run([uv, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"], repo, timeout=600)
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    assert (repo / "uv.lock").is_file(), "uv sync locks the generated repo"
