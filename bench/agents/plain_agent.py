"""The baseline for the start-up benchmark: a plain livekit-agents worker with a static key and secret.

Run with LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET and BENCH_AGENT_NAME. Options match ``sdk_agent.py``.
"""

from __future__ import annotations

import os

from livekit.agents import AgentServer, JobContext, cli

server = AgentServer(
    port=0,
    num_idle_processes=1,
    load_threshold=float("inf"),
    initialize_process_timeout=60.0,
)


@server.rtc_session(agent_name=os.environ["BENCH_AGENT_NAME"])
async def entrypoint(ctx: JobContext) -> None:
    if ctx.job.metadata != "hold":
        ctx.shutdown(reason="benchmark job done")


if __name__ == "__main__":
    cli.run_app(server)
