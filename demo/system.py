"""The whole system on loopback: Entra/Graph, LiveKit and OTLP stand-ins, the platform service as a real
``lkps`` process (SQLite or PostgreSQL), an optional gateway in front of it, and agent processes.

``with System(SystemOptions(workdir=...)) as system:`` starts everything and stops every process it started,
also on errors and Ctrl-C. The demo (``demo/run.py``) and the whole-system tests (``tests/e2e``) both use it.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from demo.balancer import Balancer
from demo.gateway import Gateway
from demo.processes import ManagedProcess, clean_environment, free_port, wait_for
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.otlp import OtlpStandIn
from livekit_platform_testing.tenant import REGISTER_ROLE, SESSION_ROLE, App, Tenant, WorkloadIdentity
from lkps.settings import normalize_database_url

IdentityMode = Literal["entra", "gateway"]
# The loggers of the in-process stand-ins and the gateway; their records are kept for the secret scan.
_IN_PROCESS_LOGGERS = ("livekit_platform_testing", "demo")


@dataclass(frozen=True)
class SystemOptions:
    workdir: Path
    identity_mode: IdentityMode = "entra"
    database_url: str | None = None
    """``LKPS_DATABASE_URL``; default: a SQLite file in ``workdir`` (the service's embedded default)."""
    service_command: Literal["dev", "serve"] = "serve"
    """``dev`` (migrations on start, readable logs) or ``migrate`` then ``serve`` (JSON logs)."""
    agent_token_ttl: int = 60
    """``LKPS_AGENT_TOKEN_TTL``; the SDK renews at half of it (60 s, the service's minimum: every 30 s)."""
    entra_token_lifetime: int = 3600
    """Entra access-token lifetime; below 300 s azure-identity asks Entra again on every renewal."""
    tenant_id: str | None = None
    platform_app_id: str | None = None
    webhook_max_attempts: int = 120
    """LiveKit retries a webhook this often (0.25 s backoff doubling up to 5 s), enough for short outages."""
    service_env: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    """How many ``lkps`` processes share the database; above 1 a round-robin balancer fronts them."""


class PlatformService:
    """``python -m lkps`` as a child process on a fixed loopback port, so restarts keep its URL."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int,
        command: str,
        workdir: Path,
        name: str = "platform service",
    ) -> None:
        self.port = port
        self.env = dict(env)
        self.command = command
        self.workdir = workdir
        self.process = ManagedProcess(
            name,
            [sys.executable, "-m", "lkps", command, "--host", "127.0.0.1", "--port", str(self.port)],
            self.env,
            cwd=workdir,
            log_path=workdir / f"{name.replace('platform service', 'lkps').replace(' ', '-')}.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "lkps", "migrate"],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        with (self.workdir / "lkps-migrate.log").open("a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(
                f"lkps migrate failed with exit status {done.returncode}:\n{done.stderr[-2000:]}"
            )

    def start(self, timeout: float = 60.0) -> None:
        self.process.start()
        wait_for(self._answers, timeout=timeout, what="the platform service answering /openapi.json")

    def stop(self) -> int | None:
        return self.process.stop(timeout=20)

    def _answers(self) -> bool:
        if not self.process.running:
            raise RuntimeError(
                f"the platform service exited with status {self.process.returncode}:\n"
                f"{self.process.output[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}/openapi.json", timeout=2) as response:  # noqa: S310
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False


class _Captured(logging.Handler):
    """Keeps every record of the in-process components as text, for the secret scan."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class System:
    """Everything started and wired together; see the module docstring."""

    def __init__(self, options: SystemOptions) -> None:
        self.options = options
        self.workdir = options.workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stack = ExitStack()
        self._captured = _Captured()
        self.agents: list[ManagedProcess] = []
        self.gateway: Gateway | None = None
        # What the gateway proves itself with (LKPS_GATEWAY_SHARED_SECRET); new for every run.
        self.gateway_secret = secrets.token_urlsafe(48)
        self.started = False
        """True once start() has begun: the stand-ins may be inspected."""

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> System:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        options = self.options
        self.started = True
        for name in _IN_PROCESS_LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self._captured)
            self._stack.callback(logger.removeHandler, self._captured)
            if logger.getEffectiveLevel() > logging.INFO:  # the scan needs what they say at INFO
                self._stack.callback(logger.setLevel, logger.level)
                logger.setLevel(logging.INFO)
        self.entra = self._stack.enter_context(
            EntraStandIn(tenant_id=options.tenant_id, token_lifetime=options.entra_token_lifetime)
        )
        self.tenant = Tenant(self.entra, platform_app_id=options.platform_app_id)
        self.otlp = self._stack.enter_context(OtlpStandIn())
        self.database_url = options.database_url or f"sqlite:///{self.workdir / 'lkps.db'}"
        if options.replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {options.replicas}")
        ports = [free_port() for _ in range(options.replicas)]
        balancer_port = free_port() if options.replicas > 1 else None
        front_port = balancer_port or ports[0]
        self.livekit = self._stack.enter_context(
            LiveKitStandIn(
                webhook_url=f"http://127.0.0.1:{front_port}/livekit/webhook",
                webhook_max_attempts=options.webhook_max_attempts,
                webhook_retry_backoff=0.25,
            )
        )
        self.replicas = [
            PlatformService(
                self._service_env(),
                port=port,
                command=options.service_command,
                workdir=self.workdir,
                name=f"platform service {i}" if options.replicas > 1 else "platform service",
            )
            for i, port in enumerate(ports)
        ]
        self.service = self.replicas[0]
        if options.service_command == "serve":
            self.service.migrate()
        for replica in self.replicas:
            self._stack.callback(replica.stop)
            replica.start()
        self.balancer: Balancer | None = None
        if balancer_port is not None:
            self.balancer = self._stack.enter_context(
                Balancer([r.url for r in self.replicas], port=balancer_port)
            )
        self.service_url = self.balancer.url if self.balancer is not None else self.service.url
        """Where the service is reached: the balancer in front of the replicas, or the one replica."""
        if options.identity_mode == "gateway":
            self.gateway = self._stack.enter_context(
                Gateway(
                    self.service_url,
                    jwks_uri=self.entra.jwks_uri,
                    issuers=[self.entra.issuer, self.entra.v1_issuer],
                    audiences=self.tenant.audiences,
                    route_roles={"/api/agent/register": REGISTER_ROLE, "/api/session/start": SESSION_ROLE},
                    ssl_context=self.entra.tls.client_context(),
                    shared_secret=self.gateway_secret,
                )
            )

    def close(self) -> None:
        """Stop the agents, then the service and the stand-ins (in reverse order of starting)."""
        for agent in self.agents:
            agent.stop(timeout=15)
        self._stack.close()

    def _gateway_env(self) -> dict[str, str]:
        if self.options.identity_mode != "gateway":
            return {}
        return {"LKPS_GATEWAY_SHARED_SECRET": self.gateway_secret}

    def _service_env(self) -> dict[str, str]:
        return {
            **clean_environment(),
            "LIVEKIT_URL": self.livekit.ws_url,
            "LIVEKIT_API_KEY": self.livekit.api_key,
            "LIVEKIT_API_SECRET": self.livekit.api_secret,
            "LKPS_DATABASE_URL": self.database_url,
            "LKPS_IDENTITY_MODE": self.options.identity_mode,
            **self._gateway_env(),
            **self.tenant.service_env(),
            "LKPS_AGENT_TOKEN_TTL": str(self.options.agent_token_ttl),
            "LKPS_LOG_FORMAT": "json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp.url,
            "OTEL_SERVICE_NAME": "lkps",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            **self.options.service_env,
        }

    # -- agents ---------------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Where agents and clients send ``/api/*``: the gateway in gateway mode, else the service."""
        return self.gateway.url if self.gateway is not None else self.service_url

    def agent_env(
        self, identity: WorkloadIdentity, *, service_name: str, readiness_port: int
    ) -> dict[str, str]:
        """What the chart and the AKS workload-identity webhook give the agent's pod, on the stand-ins."""
        return {
            **clean_environment(),
            **self.entra.workload_identity_env(identity.app.app_id, identity.token_file),
            # keeps DefaultAzureCredential's managed-identity probe on loopback, should it get that far
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.entra.imds_url,
            "LIVEKIT_PLATFORM_URL": self.api_url,
            "LIVEKIT_PLATFORM_SCOPE": self.tenant.scope,
            "LIVEKIT_PLATFORM_READINESS_HOST": "127.0.0.1",
            "LIVEKIT_PLATFORM_READINESS_PORT": str(readiness_port),
            "LIVEKIT_PLATFORM_RETRY_INITIAL_DELAY": "0.5",
            "LIVEKIT_PLATFORM_RETRY_MAX_DELAY": "2",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp.url,
            "OTEL_SERVICE_NAME": service_name,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def start_agent(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        agent = ManagedProcess(
            name, argv, env, cwd=cwd or self.workdir, log_path=self.workdir / f"{name}.log"
        )
        self.agents.append(agent)
        return agent.start()

    # -- clients --------------------------------------------------------------------------------------------

    def start_session(
        self,
        client: App,
        agent_app_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """``POST /api/session/start`` as a client app does: an Entra token, then the call."""
        body: dict[str, Any] = {"agent_entra_app_id": agent_app_id}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self.call("/api/session/start", client, body, headers=headers)

    def register(self, agent: App, *, enforce_client_authz: bool = True) -> httpx.Response:
        """``POST /api/agent/register`` as an SDK-less agent with a client secret."""
        body = {"service_config": {"enforce_client_authz": enforce_client_authz}}
        return self.call("/api/agent/register", agent, body)

    def call(
        self,
        path: str,
        caller: App | None,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if caller is not None:
            sent["Authorization"] = f"Bearer {self.tenant.token(caller)}"
        return httpx.post(f"{self.api_url}{path}", json=dict(body), headers=sent, timeout=30)

    # -- what happened --------------------------------------------------------------------------------------

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Query the service's database (a new connection each time: the database may have restarted)."""
        url = make_url(normalize_database_url(self.database_url))
        sync_driver = {"postgresql+asyncpg": "postgresql+psycopg", "sqlite+aiosqlite": "sqlite"}
        engine = create_engine(url.set(drivername=sync_driver[url.drivername]), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [dict(row) for row in conn.execute(text(sql), params).mappings()]
        finally:
            engine.dispose()

    def logs(self) -> dict[str, str]:
        """Every process's captured output (the service, each agent) and the in-process components' logs."""
        out = {"in-process stand-ins and gateway": "\n".join(self._captured.lines)}
        for process in [*(r.process for r in self.replicas), *self.agents]:
            out[process.name] = process.output
        migrate_log = self.workdir / "lkps-migrate.log"
        if migrate_log.exists():
            out["lkps migrate"] = migrate_log.read_text(errors="replace")
        return out

    def secrets(self) -> dict[str, str]:
        """Every secret the system holds, by name: none of them may appear in a log or a span."""
        found = {"LIVEKIT_API_SECRET": self.livekit.api_secret}
        if self.options.identity_mode == "gateway":
            found["LKPS_GATEWAY_SHARED_SECRET"] = self.gateway_secret
        for app in self.tenant.apps:
            if app.secret:
                found[f"client secret of {app.display_name} ({app.app_id})"] = app.secret
        return found
