"""What the image tests share: the engine `make test-image` started, the agent repo baked for the base
image, its image and containers, the stand-ins serving in the engine's network namespace, and the answers the
bake gives (identity and URL answers have no default in the template)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomllib

from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from tests.support.docker import Docker
from tests.support.paths import REPO
from tests.support.tools import uv_binary

# What the measurements of this run were (printed at the end of the session).
BENCH: dict[str, str] = {}
# The same as numbers, written to $IMAGE_BENCH_FILE (JSON) for `make bench BENCH=images`.
MEASURED: dict[str, dict[str, float]] = {}
DEFAULTS: dict[str, Any] = json.loads((REPO / "cookiecutter.json").read_text(encoding="utf-8"))
# The vendored SDK (and stand-ins) sit inside the build context; the package source would point outside it.
TENANT_ID = "5d3c2b1a-0f9e-4d8c-b7a6-958473625140"
AGENT_APP_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PLATFORM_APP_ID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
# Identity and URL answers have no defaults in the template: given explicitly, as a team must.
ANSWERS = {
    "sdk_source": "vendored",
    "plugins": "openai",
    "telemetry_exporter": "none",
    "ci_system": "none",
    "owner_contact": "voice-agents@contoso.com",
    "codeowners": "@contoso/voice-agents",
    "entra_tenant_id": TENANT_ID,
    "agent_entra_app_id": AGENT_APP_ID,
    "platform_app_id": PLATFORM_APP_ID,
    "platform_url_nonprod": "https://voice-platform.nonprod.contoso.com",
    "platform_url_prod": "https://voice-platform.contoso.com",
    "container_registry": "contosoagents.azurecr.io",
}
TOKEN_DIR_IN_POD = "/var/run/secrets/azure/tokens"
CA_IN_POD = "/etc/ssl/private-ca/stand-in-ca.pem"


def required_env(name: str, meaning: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(
            f"{name} is not set ({meaning}): run these tests with `make test-image`, which starts the engine"
        )
    return value


@dataclass(frozen=True)
class Engine:
    docker: Docker
    base_image: str
    netns: Path
    cache: Path


def run_uv(args: list[str], cwd: Path, timeout: float = 600) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    result = subprocess.run(
        [uv_binary(), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"`uv {' '.join(args)}` in {cwd} failed:\n{result.stderr[-3000:]}")


@dataclass(frozen=True)
class AgentRepo:
    path: Path
    slug: str
    package: str


def build_requirements(repo: AgentRepo) -> list[str]:
    """uv (the version the Dockerfile pins) and the build backends of the project and what it vendors."""
    pinned = re.search(r"^ARG UV_VERSION=(\S+)$", (repo.path / "Dockerfile").read_text(), re.MULTILINE)
    assert pinned, "the Dockerfile has no `ARG UV_VERSION=...` line"
    requirements = [f"uv=={pinned.group(1)}"]
    for pyproject in (repo.path / "pyproject.toml", *repo.path.glob("vendor/*/pyproject.toml")):
        requirements += tomllib.loads(pyproject.read_text())["build-system"]["requires"]
    return sorted(set(requirements))


@dataclass(frozen=True)
class AgentImage:
    tag: str
    repo: AgentRepo
    build_seconds: float
    size_bytes: int


@dataclass
class OfflineStack:
    """Entra, LiveKit and the platform stand-ins, serving inside the engine's network namespace."""

    entra: EntraStandIn
    livekit: LiveKitStandIn
    platform: PlatformStandIn
    token_dir: Path
    ca_file: Path


@dataclass
class AgentContainer:
    docker: Docker
    name: str

    def logs(self) -> str:
        result = self.docker.run("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def exec(self, *command: str) -> str:
        return self.docker.output("exec", self.name, *command)

    def stop(self, grace: int) -> tuple[float, int]:
        """`docker stop -t grace` (SIGTERM to PID 1, SIGKILL after grace); seconds taken and exit code."""
        started = time.monotonic()
        self.docker.run("stop", "--time", str(grace), self.name, timeout=grace + 60)
        elapsed = time.monotonic() - started
        return elapsed, int(self.docker.output("inspect", "--format", "{{.State.ExitCode}}", self.name))
