"""Fixtures for the image tests: the engine `make test-image` started, a baked agent, its offline image build.

These tests need a real Docker engine and root; they run only under `make test-image` (the root pytest
configuration ignores this folder), and fail, never skip, when the engine is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomllib
from cookiecutter.main import cookiecutter

sys.path.insert(0, str(Path(__file__).parent))

from docker_cli import Docker
from netns import network_namespace
from wheelhouse import Target, locked_pins, probe_target, wheelhouse

from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import Tenant

REPO = Path(__file__).resolve().parents[2]
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
# What the measurements of this run were (printed at the end of the session).
BENCH: dict[str, str] = {}
# The same as numbers, written to $IMAGE_BENCH_FILE (JSON) for `make bench BENCH=images`.
MEASURED: dict[str, dict[str, float]] = {}


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


@pytest.fixture(scope="session")
def engine() -> Engine:
    docker = Docker(required_env("DOCKER_HOST", "the socket of the test engine"))
    netns = Path(required_env("IMAGE_NETNS", "the engine's network namespace, /proc/<dockerd pid>/ns/net"))
    engine = Engine(
        docker=docker,
        base_image=required_env("IMAGE_BASE", "the local base image the Dockerfile's PYTHON_IMAGE names"),
        netns=netns,
        cache=Path(required_env("IMAGE_CACHE", "the directory that keeps the engine data and downloads")),
    )
    version = docker.run("version", "--format", "{{.Server.Version}}", check=False)
    if version.returncode != 0:
        pytest.fail(
            f"no Docker engine answers on {docker.host}: {version.stderr.strip()} (run `make test-image`)"
        )
    if not netns.exists():
        pytest.fail(
            f"IMAGE_NETNS={netns} does not exist: is the engine still running? (run `make test-image`)"
        )
    if docker.run("image", "inspect", engine.base_image, check=False).returncode != 0:
        pytest.fail(
            f"base image {engine.base_image} is missing: `make test-image` builds it (image-engine.sh base)"
        )
    return engine


@pytest.fixture(scope="session")
def target(engine: Engine) -> Target:
    """The base image's interpreter, as its pip sees it."""
    return probe_target(engine.docker, engine.base_image)


def uv_binary() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is not installed: run `make sync`")
    return found


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


@pytest.fixture(scope="session")
def agent_repo(tmp_path_factory: pytest.TempPathFactory, target: Target) -> AgentRepo:
    """The template baked for the base image's Python, locked (from PyPI) as `make setup` would."""
    if target.python_version not in DEFAULTS["python_version"]:
        pytest.fail(
            f"the base image runs Python {target.python_version}, which the template does not offer "
            f"({DEFAULTS['python_version']}): pick another IMAGE_BASE_SUITE in mk/image.mk"
        )
    root = tmp_path_factory.mktemp("image-bake")
    config = root / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {root / 'cc'}\nreplay_dir: {root / 'replay'}\n", encoding="utf-8")
    project = Path(
        cookiecutter(
            str(REPO),
            no_input=True,
            output_dir=str(root / "out"),
            config_file=str(config),
            extra_context={
                **ANSWERS,
                "python_version": target.python_version,
                "_sdk_path": str(REPO / "sdk"),
            },
        )
    )
    run_uv(["lock", "--quiet"], project)
    package = next(p.name for p in (project / "src").iterdir() if p.is_dir())
    return AgentRepo(project, project.name, package)


def build_requirements(repo: AgentRepo) -> list[str]:
    """uv (the version the Dockerfile pins) and the build backends of the project and what it vendors."""
    pinned = re.search(r"^ARG UV_VERSION=(\S+)$", (repo.path / "Dockerfile").read_text(), re.MULTILINE)
    assert pinned, "the Dockerfile has no `ARG UV_VERSION=...` line"
    requirements = [f"uv=={pinned.group(1)}"]
    for pyproject in (repo.path / "pyproject.toml", *repo.path.glob("vendor/*/pyproject.toml")):
        requirements += tomllib.loads(pyproject.read_text())["build-system"]["requires"]
    return sorted(set(requirements))


@pytest.fixture(scope="session")
def offline_context(agent_repo: AgentRepo, target: Target, engine: Engine) -> AgentRepo:
    """The repo with wheels/ filled as wheels/README.md says; a wheelhouse per lock is kept between runs."""
    started = time.monotonic()
    uv = uv_binary()
    pins = locked_pins(uv, agent_repo.path, target)
    tools = build_requirements(agent_repo)
    house, key = wheelhouse(uv, target, pins, tools, engine.cache / "wheelhouse", engine.cache / "pip")
    wheels = sorted(house.glob("*.whl"))
    for wheel in wheels:
        shutil.copyfile(wheel, agent_repo.path / "wheels" / wheel.name)
    size = sum(wheel.stat().st_size for wheel in wheels)
    seconds = time.monotonic() - started
    BENCH["wheels"] = f"{len(wheels)} wheels, {size / 1e6:.0f} MB, ready in {seconds:.0f} s (set {key})"
    return agent_repo


@dataclass(frozen=True)
class AgentImage:
    tag: str
    repo: AgentRepo
    build_seconds: float
    size_bytes: int


@pytest.fixture(scope="session")
def agent_image(engine: Engine, offline_context: AgentRepo) -> AgentImage:
    """`docker build` of the generated Dockerfile, offline (no network at all) on the local base image."""
    repository = f"lkp-image-test/{offline_context.slug}"
    tag = f"{repository}:latest"
    args = ["build", "--network", "none", "--build-arg", "OFFLINE_WHEELS=1"]
    args += ["--build-arg", f"PYTHON_IMAGE={engine.base_image}"]
    context = str(offline_context.path)
    # IMAGE_NO_CACHE=1: a cold build of the build stage (the runtime stage copies from it)
    cold = ["--no-cache"] if os.environ.get("IMAGE_NO_CACHE") == "1" else []
    started = time.monotonic()
    # The build stage gets its own tag first: untagged, it would be dangling and pruned below, and the
    # next run would lose its layer cache. The full build then takes it from the cache.
    stage = engine.docker.run(
        *args, *cold, "--target", "build", "-t", f"{repository}:build", context, timeout=1500
    )
    final = engine.docker.run(*args, "-t", tag, context, timeout=1500)
    seconds = time.monotonic() - started
    # what the tags pointed at before is dangling now: drop it so the cache does not grow run by run
    engine.docker.run("image", "prune", "--force")
    size = int(engine.docker.output("image", "inspect", "--format", "{{.Size}}", tag))
    steps = stage.stdout.count("\nStep ") + final.stdout.count("\nStep ")
    cached = stage.stdout.count("Using cache") + final.stdout.count("Using cache")
    BENCH["image"] = f"{tag}: {size / 1e6:.0f} MB, built in {seconds:.0f} s ({cached}/{steps} steps cached)"
    MEASURED["agent"] = {"size_bytes": size, "build_seconds": seconds, "steps": steps, "cached": cached}
    return AgentImage(tag, offline_context, seconds, size)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, line in BENCH.items():
        terminalreporter.write_line(f"image bench: {name}: {line}")
    target = os.environ.get("IMAGE_BENCH_FILE")
    if target:
        Path(target).write_text(json.dumps(MEASURED, indent=2), encoding="utf-8")


@dataclass
class OfflineStack:
    """Entra, LiveKit and the platform stand-ins, serving inside the engine's network namespace."""

    entra: EntraStandIn
    livekit: LiveKitStandIn
    platform: PlatformStandIn
    token_dir: Path
    ca_file: Path


@pytest.fixture
def stack(engine: Engine, agent_repo: AgentRepo, tmp_path: Path) -> Iterator[OfflineStack]:
    # The stand-ins serve inside the engine's network namespace, so the plugin's fixtures do not fit here.
    with ExitStack() as stack:
        with network_namespace(engine.netns):
            entra = stack.enter_context(EntraStandIn(tenant_id=TENANT_ID))
            livekit = stack.enter_context(LiveKitStandIn(departure_timeout=2.0))
            platform = stack.enter_context(PlatformStandIn(entra, livekit, platform_app_id=PLATFORM_APP_ID))
        # wired as infra/ sets it up: the pod's service account federated with the agent's identity,
        # which holds the platform's register role
        token_dir = tmp_path / "azure-tokens"
        identity = Tenant(entra, platform_app_id=PLATFORM_APP_ID).add_workload_agent(
            token_dir / "azure-identity-token",
            app_id=AGENT_APP_ID,
            display_name=agent_repo.slug,
            namespace=agent_repo.slug,
            service_account=agent_repo.slug,
            managed_identity=True,
        )
        # projected volumes are world-readable files (defaultMode 0644) in a traversable directory
        token_dir.chmod(0o755)
        identity.token_file.chmod(0o644)
        ca_file = tmp_path / "stand-in-ca.pem"
        shutil.copyfile(entra.ca_file, ca_file)
        ca_file.chmod(0o644)
        yield OfflineStack(entra, livekit, platform, token_dir, ca_file)


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


@pytest.fixture
def run_agent(
    engine: Engine, agent_image: AgentImage
) -> Iterator[Callable[[dict[str, str], list[str]], AgentContainer]]:
    """Start the image as the chart runs it: host network, read-only root, no capabilities, a /tmp tmpfs."""
    containers: list[AgentContainer] = []

    def start(env: dict[str, str], volumes: list[str]) -> AgentContainer:
        name = f"lkp-image-test-{os.getpid()}-{len(containers)}"
        args = ["run", "--detach", "--name", name, "--network", "host", "--read-only"]
        args += ["--tmpfs", "/tmp:rw,nosuid,nodev,size=256m", "--cap-drop", "ALL"]
        args += ["--security-opt", "no-new-privileges"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        engine.docker.run(*args, agent_image.tag)
        container = AgentContainer(engine.docker, name)
        containers.append(container)
        return container

    yield start
    for container in containers:
        engine.docker.run("rm", "--force", container.name, check=False)
