"""The SDK worker the start-up benchmark launches: what a generated agent does, minus the voice pipeline.

Worker options match ``plain_agent.py`` exactly, so the two differ only by the SDK. A job whose metadata is
``hold`` keeps running until the server terminates it (the renewal check needs a job in flight).
"""

from __future__ import annotations

from livekit_platform_sdk import Worker
from livekit_platform_sdk.agents import JobContext

worker = Worker(
    port=0,  # the upstream health server: any free port
    num_idle_processes=1,
    load_threshold=float("inf"),  # a busy benchmark machine must not make the worker refuse jobs
    initialize_process_timeout=60.0,
)


@worker.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    if ctx.job.metadata != "hold":
        ctx.shutdown(reason="benchmark job done")


if __name__ == "__main__":
    worker.run()
