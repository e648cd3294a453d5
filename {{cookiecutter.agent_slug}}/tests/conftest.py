"""Fixtures: the offline stack (the stand-ins of livekit-platform-testing's pytest plugin, wired as on AKS)
and the agent as a real `python -m` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import Tenant, WorkloadIdentity

sys.path.insert(0, str(Path(__file__).parent))

from offline_stack import (
    ENTRA_OPTIONS,
    LIVEKIT_OPTIONS,
    PACKAGE,
    TENANT_OPTIONS,
    OfflineStack,
    add_agent_identity,
    free_port,
)


@pytest.fixture(scope="session")
def entra_standin_options() -> dict[str, Any]:
    return ENTRA_OPTIONS


@pytest.fixture(scope="session")
def livekit_standin_options() -> dict[str, Any]:
    return LIVEKIT_OPTIONS


@pytest.fixture(scope="session")
def tenant_options() -> dict[str, Any]:
    return TENANT_OPTIONS


@pytest.fixture(scope="module")
def agent_identity(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> WorkloadIdentity:
    return add_agent_identity(tenant, tmp_path_factory.mktemp("azure-tokens"))


@pytest.fixture
def stack(
    entra_standin: EntraStandIn,
    livekit_standin: LiveKitStandIn,
    platform_standin: PlatformStandIn,
    agent_identity: WorkloadIdentity,
) -> OfflineStack:
    """The same stack as `make offline`, from the plugin's fixtures."""
    return OfflineStack(entra_standin, livekit_standin, platform_standin, agent_identity)


class AgentProcess:
    """`python -m <package> start` with output captured to files; killed with its job processes at the end."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.health_port = int(env["AGENT_HEALTH_PORT"])
        self.readiness_port = int(env["LIVEKIT_PLATFORM_READINESS_PORT"])
        self._log = (workdir / "agent.log").open("wb")
        self.log_path = workdir / "agent.log"
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", PACKAGE, "start"],
            env=env,
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def terminate(self, timeout: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the agent did not exit within {timeout}s of SIGTERM:\n{self.output}"
            ) from None

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_agent(stack: OfflineStack, tmp_path: Path) -> Iterator[Callable[[], AgentProcess]]:
    started: list[AgentProcess] = []

    def start() -> AgentProcess:
        env = stack.agent_env(health_port=free_port(), readiness_port=free_port())
        agent = AgentProcess(env, tmp_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.close()


def wait_for(
    predicate: Callable[[], object], *, timeout: float, what: str, output: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s; agent output:\n{output()}")
        time.sleep(0.1)
