"""AgentConfig: worker options from the environment, and errors that name the variable and the fix."""

from __future__ import annotations

import math

import pytest
from livekit_platform_sdk.settings import SettingsError

from {{ cookiecutter.package_name }}.config import AgentConfig


def test_defaults_match_the_chart_defaults() -> None:
    config = AgentConfig.from_env({})

    assert config.worker_options() == {"drain_timeout": 1800, "port": 8081}


def test_environment_sets_every_worker_option() -> None:
    config = AgentConfig.from_env(
        {
            "AGENT_DRAIN_TIMEOUT_SECONDS": "600",
            "AGENT_HEALTH_PORT": "9000",
            "AGENT_IDLE_PROCESSES": "1",
            "AGENT_LOAD_THRESHOLD": "inf",
        }
    )

    options = config.worker_options()
    assert options["drain_timeout"] == 600
    assert options["port"] == 9000
    assert options["num_idle_processes"] == 1
    assert math.isinf(options["load_threshold"])


def test_every_malformed_variable_is_named_in_one_error() -> None:
    with pytest.raises(SettingsError, match="the agent is not configured correctly") as raised:
        AgentConfig.from_env(
            {
                "AGENT_DRAIN_TIMEOUT_SECONDS": "soon",
                "AGENT_HEALTH_PORT": "70000",
                "AGENT_LOAD_THRESHOLD": "-1",
            }
        )

    assert raised.value.problems == [
        "AGENT_DRAIN_TIMEOUT_SECONDS='soon' is not an integer:"
        " set it to a whole number of seconds at least 1 or unset it",
        "AGENT_HEALTH_PORT='70000' is out of range: set it to an integer between 0 and 65535",
        "AGENT_LOAD_THRESHOLD='-1' is out of range: set it to a number above 0",
    ]
