"""A plain livekit-agents worker for the LiveKit stand-in tests: records each job it runs, never joins media.

Run as ``python plain_worker.py start`` with LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET and
PLAIN_WORKER_AGENT_NAME, PLAIN_WORKER_RECORD_FILE (one JSON line per job), PLAIN_WORKER_HTTP_PORT (health).
A job whose metadata is ``hold`` stays running until the server terminates it; any other job ends at once.
"""

from __future__ import annotations

import asyncio
import json
import os

from livekit.agents import AgentServer, JobContext, cli

server = AgentServer(
    port=int(os.environ.get("PLAIN_WORKER_HTTP_PORT", "0")),
    num_idle_processes=1,  # two cores: one warm job process is plenty
    load_threshold=float("inf"),  # CPU load on a busy test machine must not make the worker refuse jobs
    initialize_process_timeout=60.0,
    # forkserver (livekit-agents' Linux default) can report a job that ended cleanly as failed: the worker
    # joins a job process in one thread while starting the next one in another, and CPython's forkserver
    # Popen.poll() lets the second thread read EOF for the first's exit status (exit code 255). spawn reaps
    # with waitpid and does not lose it; see docs/agent-guide.md, Troubleshooting.
    multiprocessing_context="spawn",
)


def _append_record(record: dict[str, object]) -> None:
    with open(os.environ["PLAIN_WORKER_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


@server.rtc_session(agent_name=os.environ["PLAIN_WORKER_AGENT_NAME"])
async def entrypoint(ctx: JobContext) -> None:
    record = {
        "job_id": ctx.job.id,
        "metadata": ctx.job.metadata,
        "room": ctx.job.room.name,
        "pid": os.getpid(),
    }
    await asyncio.to_thread(_append_record, record)
    if ctx.job.metadata != "hold":
        ctx.shutdown(reason="recorded the job")
    # returning without shutdown keeps the job process (and the job) alive until the server terminates it


if __name__ == "__main__":
    cli.run_app(server)
