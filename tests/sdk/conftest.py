"""Fixtures for the SDK tests: the Entra, LiveKit, OTLP and platform stand-ins, agent subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from livekit_platform_sdk.testing.entra import EntraStandIn
from livekit_platform_sdk.testing.livekit_server import LiveKitStandIn
from livekit_platform_sdk.testing.otlp import OtlpStandIn
from livekit_platform_sdk.testing.platform import REGISTER_ROLE, PlatformStandIn

AGENTS_DIR = Path(__file__).parent / "agents"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AgentApp:
    app_id: str
    secret: str


@pytest.fixture(scope="session")
def entra() -> Iterator[EntraStandIn]:
    with EntraStandIn() as stand_in:
        yield stand_in


@pytest.fixture(scope="session")
def platform_app_id(entra: EntraStandIn) -> str:
    return entra.register_app(display_name="livekit platform", app_roles=[REGISTER_ROLE]).app_id


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[LiveKitStandIn]:
    with LiveKitStandIn(departure_timeout=2.0) as stand_in:
        yield stand_in


@pytest.fixture
def agent_app(entra: EntraStandIn, platform_app_id: str) -> AgentApp:
    """A fresh agent app registration allowed to register with the platform."""
    app = entra.register_app(display_name="test agent")
    entra.assign_role(app.app_id, platform_app_id, REGISTER_ROLE)
    return AgentApp(app.app_id, entra.add_secret(app.app_id))


@pytest.fixture
def platform(
    entra: EntraStandIn, livekit_server: LiveKitStandIn, platform_app_id: str
) -> Iterator[PlatformStandIn]:
    with PlatformStandIn(entra, livekit_server, platform_app_id=platform_app_id) as fake:
        yield fake


@pytest.fixture
def otlp() -> Iterator[OtlpStandIn]:
    with OtlpStandIn() as stand_in:
        yield stand_in


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without any LiveKit, Azure or OTEL configuration of the machine."""
    prefixes = ("LIVEKIT_", "AZURE_", "OTEL_", "IDENTITY_", "MSI_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def platform_env(platform: PlatformStandIn, platform_app_id: str, **extra: str) -> dict[str, str]:
    return {
        "LIVEKIT_PLATFORM_URL": platform.url,
        "LIVEKIT_PLATFORM_SCOPE": f"api://{platform_app_id}/.default",
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
