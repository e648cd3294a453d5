"""Entra ID, the LiveKit server and the platform service as local stand-ins, wired the way AKS is.

The agent authenticates exactly as in the cluster: workload identity with a projected service-account token
for the chart's service account, federated with the agent's identity, which holds the platform's app role.
Used by the smoke test, and by `make offline` to run the agent with no cloud at all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import Tenant, WorkloadIdentity

# The answers this repo was generated with: the stand-ins use the same IDs and names as the real systems.
TENANT_ID = {{ cookiecutter.entra_tenant_id | quoted }}
AGENT_APP_ID = {{ cookiecutter.agent_entra_app_id | quoted }}
# The worker's LiveKit agent name: the platform's canonical spelling of the app ID (a lower-case GUID).
AGENT_NAME = AGENT_APP_ID.lower()
PLATFORM_APP_ID = {{ cookiecutter.platform_app_id | quoted }}
NAMESPACE = {{ cookiecutter.aks_namespace | quoted }}
SERVICE_ACCOUNT = "{{ cookiecutter.agent_slug }}"
PACKAGE = "{{ cookiecutter.package_name }}"

# How the stand-ins are set up, here and by the pytest fixtures (tests/conftest.py passes them on).
ENTRA_OPTIONS: dict[str, Any] = {"tenant_id": TENANT_ID}
LIVEKIT_OPTIONS: dict[str, Any] = {"departure_timeout": 2.0}
TENANT_OPTIONS: dict[str, Any] = {"platform_app_id": PLATFORM_APP_ID}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_agent_identity(tenant: Tenant, token_dir: Path) -> WorkloadIdentity:
    """The agent's identity as infra/ creates it: a managed identity federated with the chart's service
    account and holding the platform's register role; the projected token is written to `token_dir`."""
    return tenant.add_workload_agent(
        token_dir / "azure-identity-token",
        app_id=AGENT_APP_ID,
        display_name=SERVICE_ACCOUNT,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        managed_identity=True,
    )


@dataclass
class OfflineStack:
    entra: EntraStandIn
    livekit: LiveKitStandIn
    platform: PlatformStandIn
    identity: WorkloadIdentity

    @classmethod
    @contextmanager
    def start(cls, workdir: Path) -> Iterator[OfflineStack]:
        with ExitStack() as stack:
            entra = stack.enter_context(EntraStandIn(**ENTRA_OPTIONS))
            livekit = stack.enter_context(LiveKitStandIn(**LIVEKIT_OPTIONS))
            tenant = Tenant(entra, **TENANT_OPTIONS)
            platform = stack.enter_context(
                PlatformStandIn(entra, livekit, platform_app_id=tenant.platform.app_id)
            )
            yield cls(entra, livekit, platform, add_agent_identity(tenant, workdir))

    def agent_env(self, *, health_port: int, readiness_port: int) -> dict[str, str]:
        """The environment the chart and the workload identity webhook give the pod, on the stand-ins."""
        machine = {
            k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "AZURE_", "OTEL_", "MSI_"))
        }
        return {
            **machine,
            **self.entra.workload_identity_env(AGENT_APP_ID, self.identity.token_file),
            "LIVEKIT_PLATFORM_URL": self.platform.url,
            "LIVEKIT_PLATFORM_SCOPE": self.platform.scope,
            "LIVEKIT_PLATFORM_READINESS_PORT": str(readiness_port),
            "LIVEKIT_PLATFORM_READINESS_HOST": "127.0.0.1",
            "AGENT_HEALTH_PORT": str(health_port),
            "AGENT_DRAIN_TIMEOUT_SECONDS": "5",
            "AGENT_IDLE_PROCESSES": "1",
            # a busy machine must not make the worker refuse the job
            "AGENT_LOAD_THRESHOLD": "inf",
            "OTEL_TRACES_EXPORTER": "none",
            "HF_HUB_OFFLINE": "1",
            # the model providers are never called offline; their clients only need a key to be constructed
            "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "offline-placeholder"),
            "DEEPGRAM_API_KEY": os.environ.get("DEEPGRAM_API_KEY", "offline-placeholder"),
            "CARTESIA_API_KEY": os.environ.get("CARTESIA_API_KEY", "offline-placeholder"),
        }

    def dispatch(self, room: str, metadata: str = "") -> list[str]:
        """A caller joins `room`; returns the IDs of the jobs dispatched to the agent."""
        token = self.platform.session_token(room=room, agent_name=AGENT_APP_ID, metadata=metadata)
        return self.livekit.join(token).job_ids


def main() -> int:
    """`make offline`: the agent in `start` mode against the stand-ins, until Ctrl-C."""
    with tempfile.TemporaryDirectory() as workdir, OfflineStack.start(Path(workdir)) as stack:
        env = stack.agent_env(health_port=free_port(), readiness_port=free_port())
        print(f"Entra stand-in {stack.entra.url}, LiveKit stand-in {stack.livekit.ws_url}")
        print(f"platform stand-in {stack.platform.url}")
        print(f"readiness: http://127.0.0.1:{env['LIVEKIT_PLATFORM_READINESS_PORT']}/ready")
        agent = subprocess.Popen([sys.executable, "-m", PACKAGE, "start"], env=env)  # noqa: S603
        try:
            stack.livekit.wait_for_worker(AGENT_NAME, timeout=120)
            job_ids = stack.dispatch("offline-room")
            print(f"registered through the platform stand-in; dispatched job(s) {job_ids}. Ctrl-C stops.")
            return agent.wait()
        except KeyboardInterrupt:
            agent.send_signal(signal.SIGTERM)
            return agent.wait(timeout=30)
        finally:
            if agent.poll() is None:
                agent.kill()


if __name__ == "__main__":
    sys.exit(main())
