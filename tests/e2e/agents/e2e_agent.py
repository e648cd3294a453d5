"""An agent written against the SDK as a developer would, for the whole-system tests.

Run as ``python e2e_agent.py start`` with the LIVEKIT_PLATFORM_* and AZURE_* variables and E2E_AGENT_OUTPUT:
each job appends one JSON line (what ``ctx.api`` did, the parsed metadata), then ends at once, or, when the
metadata says ``"hold": true``, stays in the room until LiveKit ends the job.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from livekit_platform_sdk import Worker, job_metadata
from livekit_platform_sdk.agents import JobContext

worker = Worker(
    port=0,  # livekit-agents' health server on any free port: tests run several workers
    num_idle_processes=1,  # two cores: one warm job process is plenty
    load_threshold=float("inf"),  # a busy test machine must not make the worker refuse jobs
    initialize_process_timeout=60.0,
    drain_timeout=5,  # a revoked agent drains quickly in tests
)


@worker.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    try:
        api_outcome = f"allowed: {type(ctx.api).__name__}"
    except RuntimeError as exc:
        api_outcome = f"RuntimeError: {exc}"
    metadata = job_metadata(ctx)
    record = {
        "job_id": ctx.job.id,
        "room": ctx.job.room.name,
        "pid": os.getpid(),
        "api": api_outcome,
        "metadata": metadata,
    }
    with Path(os.environ["E2E_AGENT_OUTPUT"]).open("a", encoding="utf-8") as out:  # noqa: ASYNC230 (tiny)
        out.write(json.dumps(record) + "\n")
    if metadata.get("hold") is True:
        ended = asyncio.Event()

        async def on_shutdown(reason: str) -> None:
            ended.set()

        ctx.add_shutdown_callback(on_shutdown)
        await ended.wait()
        return
    ctx.shutdown(reason="recorded the job")


if __name__ == "__main__":
    worker.run()
