"""Fixtures: the offline stack (stand-ins wired as on AKS) and the agent as a real `python -m` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from offline_stack import PACKAGE, OfflineStack, free_port


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[OfflineStack]:
    with OfflineStack.start(tmp_path) as offline:
        yield offline


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
