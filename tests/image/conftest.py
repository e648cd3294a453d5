"""Fixtures for the image tests: the engine `make test-image` started, a baked agent, its offline image build.

These tests need a real Docker engine and root; they run only under `make test-image` (the root pytest
configuration ignores this folder), and fail, never skip, when the engine is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import Tenant
from tests.support.docker import Docker
from tests.support.image import (
    AGENT_APP_ID,
    ANSWERS,
    BENCH,
    DEFAULTS,
    MEASURED,
    PLATFORM_APP_ID,
    TENANT_ID,
    AgentContainer,
    AgentImage,
    AgentRepo,
    Engine,
    OfflineStack,
    build_requirements,
    required_env,
    run_uv,
)
from tests.support.netns import network_namespace
from tests.support.paths import REPO
from tests.support.tools import uv_binary
from tests.support.wheelhouse import Target, locked_pins, probe_target, wheelhouse


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
