"""The SDK worker as a real subprocess against the Entra, LiveKit, OTLP and platform stand-ins."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from livekit import api
from prometheus_client.parser import text_string_to_metric_families

from demo.processes import free_port, wait_for
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.otlp import OtlpStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import App, Tenant
from tests.support.agent_process import AgentProcess, platform_env

StartAgent = Callable[[str, dict[str, str]], AgentProcess]


def readiness_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def dispatch_token(livekit_standin: LiveKitStandIn, agent_name: str, room: str, metadata: str) -> str:
    """A client's participant token whose room config dispatches ``agent_name`` (what session/start mints)."""
    return (
        api.AccessToken(livekit_standin.api_key, livekit_standin.api_secret)
        .with_identity(f"caller-{room}")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name, metadata=metadata)])
        )
        .to_jwt()
    )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample livekit-agents' Prometheus endpoint serves, keyed by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample_value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def read_jobs(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_service_principal_worker_uses_platform_tokens_renews_and_exits_when_revoked(
    entra_standin: EntraStandIn,
    livekit_standin: LiveKitStandIn,
    platform_standin: PlatformStandIn,
    tenant: Tenant,
    agent_app: App,
    otlp_collector: OtlpStandIn,
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    platform_standin.token_ttl = 20  # renewal at half-life: every ~10 s
    readiness_port = free_port()
    metrics_port = free_port()
    jobs_file = tmp_path / "jobs.jsonl"
    agent = start_agent(
        "platform_agent",
        {
            **entra_standin.service_principal_env(agent_app.app_id, agent_app.secret),
            **platform_env(
                platform_standin,
                LIVEKIT_PLATFORM_READINESS_PORT=str(readiness_port),
                LIVEKIT_PLATFORM_METRICS_PORT=str(metrics_port),
            ),
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_SERVICE_NAME": "sdk-test-agent",
            "AGENT_TEST_OUTPUT": str(jobs_file),
            # a developer's leftover static credentials must be ignored, never used
            "LIVEKIT_API_KEY": "devkey",
            "LIVEKIT_API_SECRET": "devsecret-that-is-long-enough-to-sign-with-hs256",
        },
    )

    # register -> connect: LiveKit sees the token the platform minted, under the agent's Entra app id
    worker = livekit_standin.wait_for_worker(agent_app.app_id, timeout=120)
    claims = worker.connection.claims
    assert claims is not None
    assert claims.issuer == livekit_standin.api_key
    assert claims.identity == f"agent-{agent_app.app_id}"
    # the worker may already have renewed while upstream started its process pool: any minted token counts
    assert worker.connection.fingerprint in platform_standin.minted
    in_use = platform_standin.minted.index(worker.connection.fingerprint)
    assert platform_standin.registrations[0].app_id == agent_app.app_id
    assert platform_standin.registrations[0].enforce_client_authz is True
    wait_for(
        lambda: readiness_status(readiness_port) == 200,
        timeout=10,
        what="readiness 200",
        output=lambda: agent.output,
    )

    # a real dispatch: the job process re-imports the agent, and ctx.api is blocked there too
    livekit_standin.join(dispatch_token(livekit_standin, agent_app.app_id, "room-guard", '{"ticket": 42}'))
    wait_for(lambda: read_jobs(jobs_file), timeout=60, what="the job ran", output=lambda: agent.output)
    job = read_jobs(jobs_file)[0]
    assert str(job["api"]).startswith("RuntimeError: JobContext.api is blocked by livekit-platform-sdk")
    assert job["metadata"] == {"ticket": 42}
    assert job["pid"] != agent.process.pid
    assert str(job["api_key_env"]).startswith("lkps-placeholder-")

    # renewal hot-swaps the token; the next reconnect uses the new one
    wait_for(
        lambda: len(platform_standin.minted) > in_use + 1,
        timeout=30,
        what="a renewal",
        output=lambda: agent.output,
    )
    # livekit-agents' Prometheus endpoint serves the SDK's metrics next to its own
    samples = scrape(metrics_port)
    assert sample_value(samples, "livekit_platform_worker_registered") == 1
    assert 0 < sample_value(samples, "livekit_platform_token_expires_in_seconds") <= 20
    assert sample_value(samples, "livekit_platform_renewals_total") >= 1
    duration = "livekit_platform_registration_duration_seconds_count"
    assert sample_value(samples, duration, call="register", outcome="success") == 1
    assert sample_value(samples, duration, call="renew", outcome="success") >= 1
    assert sample_value(samples, "livekit_platform_renewal_failures_total", reason="unavailable") == 0
    assert any(name.startswith("lk_agents_") for name, _ in samples)

    assert livekit_standin.drop_workers() >= 1
    reconnected = livekit_standin.wait_for_worker(agent_app.app_id, not_in={worker.id}, timeout=30)
    assert reconnected.connection.fingerprint in platform_standin.minted[in_use + 1 :]

    # spans reached the collector, with attributes and without tokens
    spans = otlp_collector.wait_for_spans(
        lambda received: (
            {"platform.register", "platform.renew", "livekit.connect"} <= {s.name for s in received}
        ),
        timeout=30,
    )
    register = next(s for s in spans if s.name == "platform.register")
    assert register.scope_name == "livekit_platform_sdk"
    assert register.resource["service.name"] == "sdk-test-agent"
    assert register.attributes["livekit_platform.url"] == platform_standin.url
    assert register.attributes["http.response.status_code"] == 200
    assert register.attributes["livekit_platform.attempt"] == 1
    assert register.attributes["livekit_platform.agent.app_id"] == agent_app.app_id
    assert "livekit_platform.token.expires_at" in register.attributes
    connected = [s for s in spans if s.name == "livekit.connect" and s.status_code == "OK"]
    assert worker.id in {s.attributes.get("livekit.worker.id") for s in connected}
    for span in spans:
        for value in span.attributes.values():
            assert "eyJ" not in str(value), f"span {span.name} carries what looks like a JWT"

    # revocation: the platform refuses the next renewal -> drain, exit non-zero with a clear message
    platform_standin.mode = "refuse"
    assert agent.wait(timeout=60) != 0
    output = agent.output
    assert "refused to renew the LiveKit token" in output
    assert "HTTP 403" in output
    assert "LIVEKIT_API_KEY is set in the environment and is ignored" in output
    assert "devsecret" not in output
    assert platform_standin.registrations[-1].status == 403
    assert "Unclosed" not in output, output[-4000:]  # aiohttp's report of a session left open


def test_workload_identity_worker_keeps_its_token_while_the_platform_is_down_then_renews(
    entra_standin: EntraStandIn,
    livekit_standin: LiveKitStandIn,
    platform_standin: PlatformStandIn,
    tenant: Tenant,
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    workload = tenant.add_workload_agent(
        tmp_path / "sa-token",
        display_name="agent on AKS",
        namespace="agents",
        service_account="demo-agent",
        managed_identity=True,
    )
    identity = workload.app
    # renewal every ~24 s; the token outlives several failed retries even on a loaded machine (at 24 s, a
    # late first renewal left room for one attempt before the token ran out, and the worker exited)
    platform_standin.token_ttl = 48
    readiness_port = free_port()
    metrics_port = free_port()
    agent = start_agent(
        "platform_agent",
        {
            **entra_standin.workload_identity_env(identity.app_id, workload.token_file),
            **platform_env(
                platform_standin,
                LIVEKIT_PLATFORM_READINESS_PORT=str(readiness_port),
                LIVEKIT_PLATFORM_METRICS_PORT=str(metrics_port),
            ),
            "AGENT_TEST_OUTPUT": str(tmp_path / "jobs.jsonl"),
        },
    )
    worker = livekit_standin.wait_for_worker(identity.app_id, timeout=120)
    assert worker.connection.fingerprint in platform_standin.minted
    wait_for(
        lambda: readiness_status(readiness_port) == 200, timeout=10, what="ready", output=lambda: agent.output
    )

    platform_standin.mode = "unavailable"

    def failed() -> int:
        return sum(1 for r in platform_standin.registrations if r.status == 503)

    wait_for(lambda: failed() >= 3, timeout=80, what="renewals failing", output=lambda: agent.output)
    # the current token is still valid: the worker stays registered and ready through the outage
    assert agent.process.poll() is None
    assert readiness_status(readiness_port) == 200
    assert any(w.id == worker.id and w.connected for w in livekit_standin.workers)
    # what an operator's alert sees: renewals failing while the token runs down, still registered
    samples = scrape(metrics_port)
    assert sample_value(samples, "livekit_platform_renewal_failures_total", reason="unavailable") >= 3
    assert sample_value(samples, "livekit_platform_worker_registered") == 1
    assert sample_value(samples, "livekit_platform_token_expires_in_seconds") < 48 / 2

    minted_before = len(platform_standin.minted)
    platform_standin.mode = "up"
    wait_for(
        lambda: len(platform_standin.minted) > minted_before,
        timeout=20,
        what="renewal after",
        output=lambda: agent.output,
    )
    assert livekit_standin.drop_workers() >= 1
    reconnected = livekit_standin.wait_for_worker(identity.app_id, not_in={worker.id}, timeout=30)
    assert reconnected.connection.fingerprint in platform_standin.minted[minted_before:]
    assert agent.stop(timeout=60) == 0
    # a clean shutdown closes every HTTP session it opened (aiohttp warns about any left open)
    assert "Unclosed" not in agent.output, agent.output[-4000:]


def test_credential_failure_lists_every_way_tried_and_exits_non_zero(
    entra_standin: EntraStandIn,
    platform_standin: PlatformStandIn,
    tenant: Tenant,
    agent_app: App,
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    agent = start_agent(
        "platform_agent",
        {
            **entra_standin.ca_env(),
            # a half-configured service principal: no secret, no federated token file, no managed identity
            "AZURE_AUTHORITY_HOST": entra_standin.authority_host,
            "AZURE_TENANT_ID": entra_standin.tenant_id,
            "AZURE_CLIENT_ID": agent_app.app_id,
            **entra_standin.managed_identity_env(),  # keeps the managed identity probe on loopback
            **platform_env(platform_standin),
            "AGENT_TEST_OUTPUT": str(tmp_path / "jobs.jsonl"),
        },
    )
    assert agent.wait(timeout=120) != 0
    output = agent.output
    assert f"could not obtain an Entra token for LIVEKIT_PLATFORM_SCOPE='{tenant.scope}'" in output
    assert "service principal (ClientSecretCredential" in output
    assert "not configured: AZURE_CLIENT_SECRET not set" in output
    for credential in ("EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"):
        assert credential in output
    assert "AzureCliCredential" in output
    assert "livekit-platform-sdk: could not obtain an Entra token" in agent.stderr_path.read_text()
    assert "AttributeError" not in output
    assert platform_standin.registrations == []
