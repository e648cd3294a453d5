"""Commands in a repo generated from the template, run as its team would: a clean environment (no workspace
venv, no machine LiveKit/Azure/OTEL settings, no pyenv pin) and the suite's uv on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.tools import uv_binary


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
    # `make` finds the same uv the tests use
    env["PATH"] = f"{Path(uv_binary()).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=generated_env(), capture_output=True, text=True, check=False, timeout=timeout
    )
