"""The agent's worker settings, read once from the environment (the SDK reads the platform and Azure ones).

Declared like the SDK's own settings: one field per variable; every problem is reported at once, naming the
variable and the fix.
"""

from __future__ import annotations

from typing import Any, ClassVar

from livekit_platform_sdk.settings import EnvSettings
from pydantic import Field


class AgentConfig(EnvSettings):
    subject: ClassVar[str] = "the agent"

    drain_timeout: int = Field(
        1800,
        ge=1,
        validation_alias="AGENT_DRAIN_TIMEOUT_SECONDS",
        description="How long running sessions may finish after SIGTERM (`drain_timeout`). The chart derives "
        "the pod's `terminationGracePeriodSeconds` from the same value.",
        json_schema_extra={"group": "Worker", "unit": "seconds"},
    )
    health_port: int = Field(
        8081,
        ge=0,
        le=65535,
        validation_alias="AGENT_HEALTH_PORT",
        description="livekit-agents' health server (`port`), the liveness probe's port.",
        json_schema_extra={"group": "Worker"},
    )
    idle_processes: int | None = Field(
        None,
        ge=0,
        validation_alias="AGENT_IDLE_PROCESSES",
        description="Job processes kept warm (`num_idle_processes`).",
        json_schema_extra={"group": "Worker", "default_text": "livekit-agents' default"},
    )
    load_threshold: float | None = Field(
        None,
        gt=0,
        validation_alias="AGENT_LOAD_THRESHOLD",
        description="CPU load (0-1, or `inf`) above which the worker takes no new jobs (`load_threshold`).",
        json_schema_extra={"group": "Worker", "default_text": "livekit-agents' default (0.7 in production)"},
    )

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's Worker (a livekit-agents AgentServer)."""
        options: dict[str, Any] = {"drain_timeout": self.drain_timeout, "port": self.health_port}
        if self.idle_processes is not None:
            options["num_idle_processes"] = self.idle_processes
        if self.load_threshold is not None:
            options["load_threshold"] = self.load_threshold
        return options
