"""An agent written against the SDK the way a developer would, for the SDK's subprocess tests.

Run as ``python platform_agent.py start`` with the LIVEKIT_PLATFORM_* and AZURE_* variables, plus
AGENT_TEST_OUTPUT: each job appends one JSON line recording what ``ctx.api`` did and the parsed metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from livekit_platform_sdk import Worker, job_metadata
from livekit_platform_sdk.agents import JobContext

worker = Worker(
    port=0,  # the upstream health server: any free port, tests run several workers
    num_idle_processes=1,  # two cores: one warm job process is plenty
    load_threshold=float("inf"),  # CPU load on a busy test machine must not make the worker refuse jobs
    initialize_process_timeout=60.0,
)


@worker.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    try:
        api_outcome = f"allowed: {type(ctx.api).__name__}"
    except RuntimeError as exc:
        api_outcome = f"RuntimeError: {exc}"
    record = {
        "job_id": ctx.job.id,
        "pid": os.getpid(),
        "api": api_outcome,
        "metadata": job_metadata(ctx),
        "api_key_env": os.environ.get("LIVEKIT_API_KEY", ""),
    }
    with Path(os.environ["AGENT_TEST_OUTPUT"]).open("a", encoding="utf-8") as out:  # noqa: ASYNC230 (tiny)
        out.write(json.dumps(record) + "\n")
    ctx.shutdown(reason="recorded the job")


if __name__ == "__main__":
    worker.run()
