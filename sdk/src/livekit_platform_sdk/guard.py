"""Blocks ``JobContext.api`` in every process that imports the SDK, and parses job metadata.

Agents hold no LiveKit API key or secret: a LiveKit REST client would either fail obscurely or, worse, work
with a leaked secret. The guard replaces upstream's ``cached_property`` with a class-level property, which as
a data descriptor wins over instance state however the entrypoint reaches it.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from livekit.agents import JobContext

API_BLOCKED_MESSAGE = (
    "JobContext.api is blocked by livekit-platform-sdk: agents on the LiveKit platform hold no LiveKit API "
    "key or secret, so they cannot call the LiveKit server API. Work through the room (ctx.room), its "
    "participants and data channels, or ask the platform team for a platform API that does what you need."
)


def _blocked_api(self: JobContext) -> NoReturn:
    raise RuntimeError(API_BLOCKED_MESSAGE)


def install() -> None:
    """Idempotent; runs when the SDK is imported, so the job processes that re-import the agent get it too."""
    current = JobContext.__dict__.get("api")
    if isinstance(current, property) and current.fget is _blocked_api:
        return
    JobContext.api = property(_blocked_api, doc=API_BLOCKED_MESSAGE)  # type: ignore[assignment,method-assign]


def is_installed() -> bool:
    current = JobContext.__dict__.get("api")
    return isinstance(current, property) and current.fget is _blocked_api


def job_metadata(ctx: JobContext) -> dict[str, Any]:
    """The job's metadata (what the client passed to ``session/start``) as a dict; ``{}`` when there is none.

    Raises ``ValueError`` when the metadata is not a JSON object, naming what it was instead.
    """
    raw = ctx.job.metadata
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"job metadata is not JSON ({exc.msg} at position {exc.pos}): "
            "read ctx.job.metadata as text instead"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"job metadata is JSON {type(value).__name__}, not an object: read ctx.job.metadata directly"
        )
    return value


install()
