"""The ctx.api guard and the job metadata helper in-process (the job-process case is a subprocess test)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from livekit.agents import JobContext

from livekit_platform_sdk import guard


def context_with_metadata(metadata: str) -> Any:
    return SimpleNamespace(job=SimpleNamespace(metadata=metadata))


def test_importing_the_sdk_installs_the_guard() -> None:
    import livekit_platform_sdk.agents  # noqa: F401

    assert guard.is_installed()


def test_ctx_api_raises_runtime_error_explaining_why() -> None:
    ctx = object.__new__(JobContext)  # any instance: the guard is on the class
    with pytest.raises(RuntimeError, match="hold no LiveKit API key or secret"):
        ctx.api  # noqa: B018


def test_guard_wins_over_a_value_cached_on_the_instance() -> None:
    ctx = object.__new__(JobContext)
    ctx.__dict__["api"] = "cached by upstream's cached_property"
    with pytest.raises(RuntimeError):
        ctx.api  # noqa: B018


def test_job_metadata_is_parsed_json_or_empty() -> None:
    assert guard.job_metadata(context_with_metadata(json.dumps({"ticket": 7}))) == {"ticket": 7}
    assert guard.job_metadata(context_with_metadata("")) == {}


@pytest.mark.parametrize(("metadata", "problem"), [("not json", "is not JSON"), ("[1, 2]", "JSON list")])
def test_job_metadata_that_is_not_a_json_object_says_so(metadata: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        guard.job_metadata(context_with_metadata(metadata))
