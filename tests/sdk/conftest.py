"""Fixtures for the SDK tests: agent subprocesses (the livekit-platform-testing plugin has the stand-ins)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.processes import clean_environment
from livekit_platform_testing.tenant import App, Tenant
from tests.support.agent_process import AgentProcess


@pytest.fixture(scope="session")
def livekit_standin_options() -> dict[str, Any]:
    """Rooms close 2 s after their last caller leaves (the stand-in's default is 20 s)."""
    return {"departure_timeout": 2.0}


@pytest.fixture
def agent_app(tenant: Tenant) -> App:
    """A fresh agent app (client secret) allowed to register with the platform."""
    return tenant.add_agent("test agent")


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
