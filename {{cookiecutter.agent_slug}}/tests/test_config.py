"""AgentConfig: worker options from the environment, and errors that name the variable."""

from __future__ import annotations

import math

import pytest

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
    with pytest.raises(ValueError, match="invalid agent settings") as raised:
        AgentConfig.from_env({"AGENT_DRAIN_TIMEOUT_SECONDS": "soon", "AGENT_LOAD_THRESHOLD": "-1"})

    assert "AGENT_DRAIN_TIMEOUT_SECONDS='soon'" in str(raised.value)
    assert "AGENT_LOAD_THRESHOLD='-1'" in str(raised.value)
