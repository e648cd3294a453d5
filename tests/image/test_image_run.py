"""The generated agent's image, run as AKS runs it, registers through the SDK and drains on `docker stop`."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from tests.support.image import (
    AGENT_APP_ID,
    CA_IN_POD,
    PLATFORM_APP_ID,
    TENANT_ID,
    TOKEN_DIR_IN_POD,
    AgentContainer,
    AgentImage,
    Engine,
    OfflineStack,
)
from tests.support.netns import network_namespace

pytestmark = pytest.mark.timeout(1800)

DRAIN_SECONDS = 10
# the chart's rule is drain + ~90 s; a shorter margin keeps the test quick and still proves the drain
GRACE_SECONDS = DRAIN_SECONDS + 20
LIVENESS = "http://127.0.0.1:8081/"
READINESS = "http://127.0.0.1:8082/ready"


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback probe URL)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def wait_for_status(engine: Engine, url: str, container: AgentContainer, timeout: float) -> None:
    """Poll `url` from inside the engine's namespace (where the kubelet's probe would come from)."""
    deadline = time.monotonic() + timeout
    with network_namespace(engine.netns):
        while http_status(url) != 200:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{url} did not answer 200 within {timeout}s; container log:\n{container.logs()}"
                )
            time.sleep(0.2)


def pod_env(stack: OfflineStack) -> dict[str, str]:
    """What the chart and the workload identity webhook put in the pod, aimed at the stand-ins."""
    return {
        "AZURE_CLIENT_ID": AGENT_APP_ID,
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_AUTHORITY_HOST": stack.entra.authority_host,
        "AZURE_FEDERATED_TOKEN_FILE": f"{TOKEN_DIR_IN_POD}/azure-identity-token",
        "SSL_CERT_FILE": CA_IN_POD,
        "REQUESTS_CA_BUNDLE": CA_IN_POD,
        "LIVEKIT_PLATFORM_URL": stack.platform.url,
        "LIVEKIT_PLATFORM_SCOPE": stack.platform.scope,
        "AGENT_DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS),
        "AGENT_IDLE_PROCESSES": "1",
        # a busy CI machine must not make the worker refuse the job
        "AGENT_LOAD_THRESHOLD": "inf",
        "OTEL_TRACES_EXPORTER": "none",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": "/tmp",
        # the model providers are never called; their clients only need a key to be constructed
        "OPENAI_API_KEY": "offline-placeholder",
    }


def test_agent_container_registers_with_workload_identity_and_drains_within_the_grace_period(
    engine: Engine,
    agent_image: AgentImage,
    stack: OfflineStack,
    run_agent: Callable[[dict[str, str], list[str]], AgentContainer],
) -> None:
    container = run_agent(
        pod_env(stack),
        [f"{stack.token_dir}:{TOKEN_DIR_IN_POD}:ro", f"{stack.ca_file}:{CA_IN_POD}:ro"],
    )

    try:
        worker = stack.livekit.wait_for_worker(AGENT_APP_ID, timeout=120)
    except TimeoutError as exc:
        raise AssertionError(f"no worker registered: {exc}; container log:\n{container.logs()}") from None
    wait_for_status(engine, LIVENESS, container, timeout=30)
    wait_for_status(engine, READINESS, container, timeout=30)

    # the projected token was exchanged for an Entra token (workload identity, no secret anywhere)
    exchanges = [
        r for r in stack.entra.token_requests if r.client_id == AGENT_APP_ID and r.outcome == "issued"
    ]
    assert exchanges, f"Entra saw no token request from the agent: {stack.entra.token_requests}"
    assert {r.client_auth for r in exchanges} == {"client_assertion"}
    assert {r.scope for r in exchanges} == {f"api://{PLATFORM_APP_ID}/.default"}
    assert stack.platform.registered_app_ids[0] == AGENT_APP_ID
    # LiveKit saw the token the platform minted for this identity
    assert worker.connection.claims is not None
    assert worker.connection.claims.identity == f"agent-{AGENT_APP_ID}"
    # PID 1 is the agent itself (exec-form CMD), and no process in the container runs as root
    assert container.exec("cat", "/proc/1/cmdline").split("\0")[:3] == [
        "python",
        "-m",
        agent_image.repo.package,
    ]
    uids = {
        line.split()[1]
        for line in container.exec("sh", "-c", "grep -h ^Uid: /proc/[0-9]*/status").splitlines()
    }
    assert uids == {"10001"}

    job_ids = stack.livekit.join(
        stack.platform.session_token(room="image-room", agent_name=AGENT_APP_ID)
    ).job_ids
    assert job_ids, "the room config's dispatch reached no worker"
    job = stack.livekit.wait_for_job_status(job_ids[0], "JS_RUNNING", timeout=60)
    assert job.worker_id == worker.id

    elapsed, exit_code = container.stop(GRACE_SECONDS)

    assert exit_code == 0, f"exit code {exit_code} after {elapsed:.1f}s; container log:\n{container.logs()}"
    assert elapsed < GRACE_SECONDS, f"docker stop took {elapsed:.1f}s; container log:\n{container.logs()}"
