"""The agent name is the identity: nothing chooses it, a name set the old ways must be the identity, and the
worker announces the platform's name for it. A real Worker in this process, on the Entra, platform and
LiveKit stand-ins."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential

from livekit_platform_sdk import PlatformError, Settings, SettingsError, Worker
from livekit_platform_sdk.agents import JobContext
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import App, Tenant


def worker_for(
    entra: EntraStandIn, platform: PlatformStandIn, app: App, *, agent_name: str | None = None
) -> Worker:
    settings = Settings(
        platform_url=platform.url,
        scope=platform.scope,
        azure_client_id=app.app_id,
        agent_name=agent_name,
        register_attempts=1,
        readiness_port=0,
    )
    credential = ClientSecretCredential(
        entra.tenant_id,
        app.app_id,
        app.secret,
        authority=entra.authority_host,
        connection_verify=str(entra.ca_file),
    )
    return Worker(settings=settings, credential=credential, port=0, num_idle_processes=0)


async def entrypoint(ctx: JobContext) -> None:
    return None


async def test_a_different_livekit_platform_agent_name_stops_the_worker_before_it_connects(
    entra_standin: EntraStandIn,
    platform_standin: PlatformStandIn,
    livekit_standin: LiveKitStandIn,
    agent_app: App,
) -> None:
    other = str(uuid.uuid4())
    worker = worker_for(entra_standin, platform_standin, agent_app, agent_name=other)
    worker.rtc_session(entrypoint)

    with pytest.raises(SettingsError) as error:
        await worker.run(devmode=False)

    (problem,) = error.value.problems
    assert problem.startswith(f"LIVEKIT_PLATFORM_AGENT_NAME={other!r} is not this agent's identity")
    assert f"its Entra app (client) ID, {agent_app.app_id}" in problem
    assert "remove LIVEKIT_PLATFORM_AGENT_NAME from the deployment" in problem
    assert worker.platform_error is error.value
    assert not [w for w in livekit_standin.workers if w.agent_name in (other, agent_app.app_id)]


@pytest.mark.parametrize("source", ["rtc_session", "LIVEKIT_AGENT_NAME", "LIVEKIT_AGENT_NAME_OVERRIDE"])
async def test_a_name_chosen_the_livekit_agents_way_that_is_not_the_identity_stops_the_worker(
    entra_standin: EntraStandIn,
    platform_standin: PlatformStandIn,
    livekit_standin: LiveKitStandIn,
    agent_app: App,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    victim = str(uuid.uuid4())  # another agent's name: the point of choosing one would be to take its jobs
    worker = worker_for(entra_standin, platform_standin, agent_app)
    for name in ("LIVEKIT_AGENT_NAME", "LIVEKIT_AGENT_NAME_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)
    if source == "rtc_session":
        worker.rtc_session(entrypoint, agent_name=victim)
    else:
        monkeypatch.setenv(source, victim)
        worker.rtc_session(entrypoint)

    with pytest.raises(PlatformError) as error:
        await worker.run(devmode=False)

    message = str(error.value)
    assert message.startswith(f"the worker's agent name {victim!r} (from {source}")
    assert f"its Entra app (client) ID, {agent_app.app_id}" in message
    removed = "agent_name=... from @worker.rtc_session()" if source == "rtc_session" else source
    assert f"remove {removed}" in message
    assert not [w for w in livekit_standin.workers if w.agent_name == victim]


def test_worker_refuses_an_agent_name_argument() -> None:
    with pytest.raises(TypeError, match="does not take agent_name: the worker's LiveKit agent name is its"):
        Worker(agent_name="someone-else")


async def test_the_worker_announces_the_platforms_name_for_its_identity(
    entra_standin: EntraStandIn,
    platform_standin: PlatformStandIn,
    livekit_standin: LiveKitStandIn,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Entra spells this app ID in capitals; the platform's canonical name is the lower-case GUID
    shouting = tenant.add_agent("capital agent", app_id=str(uuid.uuid4()).upper())
    canonical = shouting.app_id.lower()
    # the old variable naming the identity itself, in another GUID spelling: accepted, with a warning
    worker = worker_for(entra_standin, platform_standin, shouting, agent_name="{" + canonical + "}")
    worker.rtc_session(entrypoint, agent_name=shouting.app_id)
    run: asyncio.Task[Any] | None = None
    try:
        with caplog.at_level(logging.WARNING, logger="livekit_platform_sdk"):
            run = asyncio.create_task(worker.run(devmode=False))
            registered = await livekit_standin.wait_for_worker_async(canonical, timeout=60)
        assert registered.agent_name == canonical
        assert worker.agent_name == canonical
        assert platform_standin.registered_app_ids == [shouting.app_id]
        assert "LIVEKIT_PLATFORM_AGENT_NAME is deprecated and has no effect" in caplog.text
    finally:
        await worker.aclose()
        if run is not None:
            await asyncio.wait_for(run, timeout=30)
