"""Fixtures for the SDK tests: agent subprocesses (the livekit-platform-testing plugin has the stand-ins)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import App, Tenant

AGENTS_DIR = Path(__file__).parent / "agents"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def livekit_standin_options() -> dict[str, Any]:
    """Rooms close 2 s after their last caller leaves (the stand-in's default is 20 s)."""
    return {"departure_timeout": 2.0}


@pytest.fixture
def agent_app(tenant: Tenant) -> App:
    """A fresh agent app (client secret) allowed to register with the platform."""
    return tenant.add_agent("test agent")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without any LiveKit, Azure or OTEL configuration of the machine."""
    prefixes = ("LIVEKIT_", "AZURE_", "OTEL_", "IDENTITY_", "MSI_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def platform_env(platform: PlatformStandIn, **extra: str) -> dict[str, str]:
    return {
        "LIVEKIT_PLATFORM_URL": platform.url,
        "LIVEKIT_PLATFORM_SCOPE": platform.scope,
        "LIVEKIT_PLATFORM_RETRY_INITIAL_DELAY": "0.2",
        "LIVEKIT_PLATFORM_RETRY_MAX_DELAY": "1",
        "LIVEKIT_PLATFORM_READINESS_HOST": "127.0.0.1",
        **extra,
    }


class AgentProcess:
    """``python tests/sdk/agents/<agent>.py start`` as a real subprocess, output captured to files."""

    def __init__(self, agent: str, env: dict[str, str], workdir: Path) -> None:
        self.stdout_path = workdir / f"{agent}.stdout"
        self.stderr_path = workdir / f"{agent}.stderr"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(AGENTS_DIR / f"{agent}.py"), "start"],
            env=env,
            cwd=workdir,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,  # job processes die with the group in close()
        )

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"agent did not exit within {timeout}s; output:\n{self.output[-4000:]}"
            ) from None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (drain) and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._stdout.close()
        self._stderr.close()


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], AgentProcess]]:
    started: list[AgentProcess] = []

    def start(agent: str, env: dict[str, str]) -> AgentProcess:
        process = AgentProcess(agent, {**clean_environment(), **env}, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def wait_for(
    predicate: Callable[[], object], *, timeout: float, what: str, output: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} did not happen within {timeout}s; agent output:\n{output()[-4000:]}"
            )
        time.sleep(0.1)
