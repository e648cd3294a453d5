"""The Worker's contract in-process: no LiveKit credentials accepted, and the upstream seam it relies on."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest
from livekit.agents import AgentServer

from livekit_platform_sdk import PlatformError, PlatformUnavailableError, Settings
from livekit_platform_sdk.worker import PLACEHOLDER_PREFIX, Worker
from tests.support.fakes import StaticCredential


@pytest.mark.parametrize("argument", ["api_key", "api_secret", "ws_url"])
def test_worker_refuses_livekit_credentials_and_url(argument: str) -> None:
    options: dict[str, Any] = {argument: "x" * 40}
    with pytest.raises(TypeError, match=f"does not take {argument}: the LiveKit Platform Service issues"):
        Worker(**options)


def test_livekit_credentials_in_the_environment_are_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LIVEKIT_API_KEY", "devkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "devsecret-devsecret-devsecret-devsecret")
    with caplog.at_level(logging.WARNING, logger="livekit_platform_sdk"):
        worker = Worker()
    assert "LIVEKIT_API_KEY is set in the environment and is ignored" in caplog.text
    assert "LIVEKIT_API_SECRET is set in the environment and is ignored" in caplog.text
    assert "devsecret" not in caplog.text
    worker.update_options(api_key="devkey", api_secret="devsecret-devsecret-devsecret-devsecret")
    # what upstream would sign with (and export to job processes) stays a useless per-process placeholder
    assert worker._api_key.startswith(PLACEHOLDER_PREFIX)
    assert worker._api_secret.startswith(PLACEHOLDER_PREFIX)
    assert len(worker._api_secret.encode()) >= 32
    assert worker._api_secret != Worker()._api_secret


async def test_cli_entry_inside_a_running_loop_points_to_the_async_run() -> None:
    with pytest.raises(RuntimeError, match=r"await worker.run\(devmode=False\)"):
        Worker().run()


def test_upstream_connection_task_still_opens_the_websocket_through_the_session_seam() -> None:
    # canary for livekit-agents upgrades: the SDK replaces the bearer in this exact call
    source = inspect.getsource(AgentServer._connection_task)
    assert "self._http_session.ws_connect(" in source
    assert "headers=headers" in source
    assert '"Authorization": f"Bearer {join_jwt}"' in source
    # the SDK sets the metrics port here before run(), which reads it to start the Prometheus server
    run_source = inspect.getsource(AgentServer.run)
    assert "if self._prometheus_port is not None:" in run_source
    assert "self._prometheus_multiproc_dir" in run_source
    assert "async def run(self, *, devmode: bool = False, unregistered: bool = False)" in inspect.getsource(
        AgentServer.run
    )


async def test_unregistered_run_as_console_mode_starts_it_needs_no_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # console mode runs `server.run(devmode=True, unregistered=True)`: no LiveKit server, so no platform
    # registration, and none of the platform settings are required
    for name in ("LIVEKIT_PLATFORM_URL", "LIVEKIT_PLATFORM_SCOPE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    worker = Worker(num_idle_processes=0, port=0)

    @worker.rtc_session()
    async def entrypoint(ctx: Any) -> None:
        return None

    started = asyncio.Event()
    worker.once("worker_started", lambda *_: started.set())
    run = asyncio.create_task(worker.run(devmode=True, unregistered=True))
    await asyncio.wait_for(started.wait(), timeout=60)

    assert worker._platform_client is None
    assert worker._renewal_task is None
    assert not run.done()
    await worker.aclose()
    await asyncio.wait_for(run, timeout=30)


def settings(**values: Any) -> Settings:
    # nothing listens on port 9: one attempt, refused at once
    return Settings(
        platform_url="http://127.0.0.1:9", scope="api://p/.default", register_attempts=1, **values
    )


async def test_a_metrics_port_set_twice_differently_stops_the_worker_naming_both() -> None:
    worker = Worker(settings=settings(metrics_port=9100), credential=StaticCredential(), prometheus_port=9200)
    with pytest.raises(
        PlatformError, match=r"LIVEKIT_PLATFORM_METRICS_PORT=9100 and Worker\(prometheus_port="
    ):
        await worker.run(devmode=False)


async def test_the_metrics_port_setting_becomes_livekit_agents_prometheus_port_and_warns_in_multiprocess_mode(
    caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    worker = Worker(
        settings=settings(metrics_port=9100),
        credential=StaticCredential(),
        prometheus_multiproc_dir=str(tmp_path),
    )
    with (
        caplog.at_level(logging.WARNING, logger="livekit_platform_sdk"),
        pytest.raises(PlatformUnavailableError),
    ):
        await worker.run(devmode=False)
    assert worker._prometheus_port == 9100
    assert "the SDK's livekit_platform_* metrics are not exported" in caplog.text
