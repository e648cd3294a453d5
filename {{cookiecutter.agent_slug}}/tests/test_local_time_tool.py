"""The get_local_time tool: the answer the model reads back, and the error it gets for a bad time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from livekit_platform_sdk.agents import ToolError

from {{ cookiecutter.package_name }}.agent import Assistant

FIXED_NOW = datetime(2025, 1, 15, 12, 30, tzinfo=UTC)


def make_assistant() -> Assistant:
    return Assistant(clock=lambda: FIXED_NOW)


async def test_local_time_is_converted_to_the_requested_zone() -> None:
    answer = await make_assistant().get_local_time(cast(Any, None), "Europe/Berlin")

    assert answer == "13:30 on Wednesday, 15 January 2025 (CET)"


async def test_local_time_follows_daylight_saving() -> None:
    summer = datetime(2025, 7, 15, 12, 30, tzinfo=UTC)
    answer = await Assistant(clock=lambda: summer).get_local_time(cast(Any, None), "America/New_York")

    assert answer == "08:30 on Tuesday, 15 July 2025 (EDT)"


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../etc/passwd", ""])
async def test_unknown_time_zone_is_a_tool_error_the_model_can_explain(name: str) -> None:
    with pytest.raises(ToolError, match="not a time zone I know"):
        await make_assistant().get_local_time(cast(Any, None), name)


def test_tool_is_offered_to_the_model_with_its_argument_documented() -> None:
    tools = {tool.id: tool for tool in make_assistant().tools}

    assert "get_local_time" in tools
    assert "IANA time zone" in (tools["get_local_time"].info.description or "") + str(
        tools["get_local_time"].__doc__
    )
