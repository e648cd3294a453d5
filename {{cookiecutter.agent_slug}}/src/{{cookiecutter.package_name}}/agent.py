"""The agent: its instructions, one function tool and the voice pipeline, served by the SDK's Worker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from livekit_platform_sdk import Worker
from livekit_platform_sdk.agents import (
    Agent,
    AgentSession,
    JobContext,
{%- if cookiecutter.plugins != "openai-realtime" %}
    JobProcess,
{%- endif %}
    RunContext,
    ToolError,
    function_tool,
)
{%- if cookiecutter.plugins == "openai" %}
from livekit_platform_sdk.plugins import openai, silero
{%- elif cookiecutter.plugins == "openai+deepgram+cartesia" %}
from livekit_platform_sdk.plugins import cartesia, deepgram, openai, silero
{%- else %}
from livekit_platform_sdk.plugins import openai
{%- endif %}

from {{ cookiecutter.package_name }}.config import AgentConfig
{%- if cookiecutter.telemetry_exporter == "azure_monitor" %}
from {{ cookiecutter.package_name }}.telemetry import configure_azure_monitor

# At import time so that job processes (which re-import this module) export their spans too.
configure_azure_monitor()
{%- endif %}

AGENT_NAME = {{ cookiecutter.agent_name | quoted }}
DESCRIPTION = {{ cookiecutter.description | quoted }}
INSTRUCTIONS = f"""You are {AGENT_NAME}, a friendly voice assistant.
{DESCRIPTION}
Keep answers short and conversational: they are spoken aloud, so avoid lists, markup and emojis.
When someone asks what time it is somewhere, use the get_local_time tool."""

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Assistant(Agent):
    """The agent's behaviour; the pipeline (speech in, model, speech out) is set up in `entrypoint`."""

    def __init__(self, clock: Clock = _utc_now) -> None:
        super().__init__(instructions=INSTRUCTIONS)
        self._clock = clock

    @function_tool
    async def get_local_time(self, context: RunContext, timezone_name: str) -> str:
        """Look up the current local time in a time zone.

        Args:
            timezone_name: An IANA time zone name such as Europe/Berlin or America/New_York.
        """
        try:
            zone = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ToolError(
                f"{timezone_name!r} is not a time zone I know; ask for a city, then use its IANA name "
                "such as Europe/Berlin"
            ) from exc
        return self._clock().astimezone(zone).strftime("%H:%M on %A, %d %B %Y (%Z)")


worker = Worker(**AgentConfig.from_env().worker_options())
{%- if cookiecutter.plugins != "openai-realtime" %}


def prewarm(proc: JobProcess) -> None:
    # Loaded once per job process, before any job arrives, so a call never waits for the VAD model.
    proc.userdata["vad"] = silero.VAD.load()


worker.setup_fnc = prewarm
{%- endif %}


@worker.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    ctx.log_context_fields = {"room": ctx.room.name}
    session = AgentSession(
{%- if cookiecutter.plugins == "openai" %}
        stt=openai.STT(model="gpt-4o-mini-transcribe"),
        llm=openai.LLM(model="gpt-4.1-mini"),
        tts=openai.TTS(model="gpt-4o-mini-tts", voice="ash"),
        vad=ctx.proc.userdata["vad"],
{%- elif cookiecutter.plugins == "openai+deepgram+cartesia" %}
        stt=deepgram.STT(model="nova-3", language="multi"),
        llm=openai.LLM(model="gpt-4.1-mini"),
        tts=cartesia.TTS(model="sonic-2"),
        vad=ctx.proc.userdata["vad"],
{%- else %}
        llm=openai.realtime.RealtimeModel(voice="coral"),
{%- endif %}
    )
    await session.start(agent=Assistant(), room=ctx.room)
    await ctx.connect()
    await session.generate_reply(instructions="Greet the user and offer your help.")
