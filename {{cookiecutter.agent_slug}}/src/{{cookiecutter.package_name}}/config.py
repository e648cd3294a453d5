"""The agent's worker settings, read once from the environment (the SDK reads the platform and Azure ones)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AgentConfig:
    drain_timeout: int = 1800
    """AGENT_DRAIN_TIMEOUT_SECONDS: how long running sessions may finish after SIGTERM (the chart derives
    the pod's terminationGracePeriodSeconds from the same value)."""
    health_port: int = 8081
    """AGENT_HEALTH_PORT: livekit-agents' health server, the liveness probe's port."""
    idle_processes: int | None = None
    """AGENT_IDLE_PROCESSES: job processes kept warm (default: livekit-agents' choice for the CPU count)."""
    load_threshold: float | None = None
    """AGENT_LOAD_THRESHOLD: CPU load (0-1, or inf) above which the worker takes no new jobs."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentConfig:
        """Every setting from the environment; one ValueError lists each malformed variable and its fix."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def whole(name: str, default: int | None, minimum: int) -> int | None:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) < minimum:
                problems.append(f"{name}={raw!r} is not a whole number >= {minimum}: fix it or unset it")
                return default
            return int(raw)

        raw_load = env.get("AGENT_LOAD_THRESHOLD", "").strip()
        load: float | None = None
        if raw_load:
            try:
                load = float(raw_load)
            except ValueError:
                load = math.nan
            if not load > 0:  # also rejects nan
                problems.append(
                    f"AGENT_LOAD_THRESHOLD={raw_load!r} is not a number > 0 (e.g. 0.7): fix or unset it"
                )
                load = None
        config = cls(
            drain_timeout=whole("AGENT_DRAIN_TIMEOUT_SECONDS", cls.drain_timeout, 1) or cls.drain_timeout,
            health_port=whole("AGENT_HEALTH_PORT", cls.health_port, 0) or 0,
            idle_processes=whole("AGENT_IDLE_PROCESSES", None, 0),
            load_threshold=load,
        )
        if problems:
            raise ValueError("invalid agent settings:\n  - " + "\n  - ".join(problems))
        return config

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's Worker (a livekit-agents AgentServer)."""
        options: dict[str, Any] = {"drain_timeout": self.drain_timeout, "port": self.health_port}
        if self.idle_processes is not None:
            options["num_idle_processes"] = self.idle_processes
        if self.load_threshold is not None:
            options["load_threshold"] = self.load_threshold
        return options
