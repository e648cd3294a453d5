"""The service benchmark's stack on 127.0.0.1: PostgreSQL, the Entra/Graph and LiveKit stand-ins,
``lkps serve`` processes (gateway and entra identity modes with the speedups on, a gateway-mode one for each
other ``LKPS_SPEEDUPS`` variant measured, and optionally a gateway-mode one from a baseline checkout, on a
database of its own) and the floor app (on uvicorn's HTTP protocol and on lkps's corked one), each its own
process.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from azure.identity import ClientSecretCredential

from bench.processes import (
    PYTHON,
    REPO,
    Child,
    clean_environment,
    free_port,
    http_ok,
    run_checked,
    wait_until,
)
from livekit_platform_sdk.testing.entra import GRAPH_APP_ID, EntraStandIn
from livekit_platform_sdk.testing.livekit_server import LiveKitStandIn

sys.path.insert(0, str(REPO / "tests"))
from support.postgres import PostgresCluster  # type: ignore[import-not-found]

REGISTER_ROLE, SESSION_ROLE = "Agent.Register", "Session.Start"
API_KEY = "APIbench" + secrets.token_hex(8)
API_SECRET = secrets.token_urlsafe(48)
# Identity headers an upstream gateway injects (lkps defaults); the register load comes from one agent.
GATEWAY_AGENT_ID = str(uuid.uuid4())
CALLER_USER_ID = str(uuid.uuid4())
CALLER_EMAIL = "jane.doe@example.com"
CALLER_PROFILE = '{"displayName": "Jane Doe", "email": "jane.doe@example.com", "cwid": "JDOE1"}'


@dataclass(frozen=True)
class Tenant:
    """The Entra apps: the platform (roles, Graph access), an enforcing agent, its pre-authorized client,
    and an agent that registers in entra mode with a real stand-in token."""

    platform_app_id: str
    platform_secret: str
    enforced_agent_id: str
    open_agent_id: str
    client_app_id: str
    entra_agent_id: str
    entra_agent_secret: str


def _new_tenant(entra: EntraStandIn) -> Tenant:
    platform = entra.register_app(display_name="platform", app_roles=[REGISTER_ROLE, SESSION_ROLE]).app_id
    entra.assign_role(platform, GRAPH_APP_ID, "Application.Read.All")
    enforced = entra.register_app(display_name="enforcing agent", exposed_scopes=["access_as_client"]).app_id
    client = entra.register_app(display_name="client").app_id
    entra.pre_authorize(enforced, client)
    entra_agent = entra.register_app(display_name="entra-mode agent").app_id
    entra.assign_role(entra_agent, platform, REGISTER_ROLE)
    return Tenant(
        platform_app_id=platform,
        platform_secret=entra.add_secret(platform),
        enforced_agent_id=enforced,
        open_agent_id=str(uuid.uuid4()),
        client_app_id=client,
        entra_agent_id=entra_agent,
        entra_agent_secret=entra.add_secret(entra_agent),
    )


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    cluster: PostgresCluster
    database_url: str
    entra: EntraStandIn
    livekit: LiveKitStandIn
    tenant: Tenant
    gateway_url: str
    entra_url: str
    floor_url: str
    corked_floor_url: str  # the same floor on lkps's corked HTTP protocol (lkps.speedups.http_protocol)
    variant_urls: dict[str, str]  # LKPS_SPEEDUPS value -> a gateway-mode lkps serve running with it
    baseline_url: str | None  # the baseline checkout's gateway-mode lkps serve
    children: list[Child]

    def entra_token(self) -> str:
        """A real stand-in token for the entra-mode agent (minted once, before the timed runs)."""
        credential = ClientSecretCredential(
            self.entra.tenant_id,
            self.tenant.entra_agent_id,
            self.tenant.entra_agent_secret,
            authority=self.entra.authority_host,
            disable_instance_discovery=True,
            connection_verify=str(self.entra.ca_file),
        )
        return credential.get_token(f"api://{self.tenant.platform_app_id}/.default").token

    def count(self, sql: str, database: str = "lkps_bench") -> int:
        return int(self.cluster.psql(sql, database=database) or 0)

    def stop_services(self) -> None:
        """SIGTERM every child: lkps flushes its audit queue before it exits."""
        for child in self.children:
            child.stop(timeout=30)


@contextlib.contextmanager
def running_stack(
    log_dir: Path, variants: Sequence[str] = (), baseline: Path | None = None
) -> Iterator[Stack]:
    """``variants``: ``LKPS_SPEEDUPS`` values besides ``on``, each served by a gateway-mode process.
    ``baseline``: another checkout (its ``.venv`` synced) whose ``lkps serve`` runs beside, in gateway mode
    with its own defaults, on a database of its own migrated by its own ``lkps migrate``."""
    cluster = PostgresCluster()
    children: list[Child] = []
    with contextlib.ExitStack() as cleanup:
        cluster.init()
        cluster.start()
        cleanup.callback(cluster.destroy)
        database_url = cluster.create_database("lkps_bench")
        entra = cleanup.enter_context(EntraStandIn())
        livekit = cleanup.enter_context(LiveKitStandIn(api_key=API_KEY, api_secret=API_SECRET))
        tenant = _new_tenant(entra)
        common = {
            "LIVEKIT_URL": livekit.ws_url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "LKPS_DATABASE_URL": database_url,
            "LKPS_ENTRA_TENANT_ID": entra.tenant_id,
            "LKPS_ENTRA_AUTHORITY": entra.authority_host,
            "LKPS_ENTRA_AUDIENCE": f"{tenant.platform_app_id},api://{tenant.platform_app_id}",
            "LKPS_GRAPH_URL": entra.graph_url,
            "LKPS_GRAPH_CLIENT_ID": tenant.platform_app_id,
            "LKPS_GRAPH_CLIENT_SECRET": tenant.platform_secret,
            "SSL_CERT_FILE": str(entra.ca_file),
        }
        run_checked([PYTHON, "-m", "lkps", "migrate"], env=clean_environment(**common))

        def on_exit() -> None:
            for child in children:
                child.stop(timeout=30)

        cleanup.callback(on_exit)
        urls: dict[str, str] = {}
        processes = [("lkps-gateway", "gateway", "on"), ("lkps-entra", "entra", "on")]
        processes += [(f"lkps-gateway-speedups-{i}", "gateway", value) for i, value in enumerate(variants, 1)]
        for name, mode, speedups in processes:
            port = free_port()
            child = Child(
                name,
                [PYTHON, "-m", "lkps", "serve", "--host", "127.0.0.1", "--port", str(port)],
                clean_environment(**common, LKPS_IDENTITY_MODE=mode, LKPS_SPEEDUPS=speedups),
                log_dir,
            )
            children.append(child)
            urls[mode if speedups == "on" else speedups] = health = f"http://127.0.0.1:{port}"
            wait_until(partial(http_ok, f"{health}/api/health"), timeout=60, what="healthy", child=child)
        floor_urls: dict[bool, str] = {}
        for corked in (False, True):
            floor_port = free_port()
            floor = Child(
                "floor-corked" if corked else "floor",
                [PYTHON, "-m", "bench.floor_app", "--host", "127.0.0.1", "--port", str(floor_port)]
                + (["--corked"] if corked else []),
                clean_environment(
                    LIVEKIT_URL=livekit.ws_url, LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=API_SECRET
                ),
                log_dir,
            )
            children.append(floor)
            wait_until(
                partial(port_open, floor_port), timeout=60, what="the floor app listening", child=floor
            )
            floor_urls[corked] = f"http://127.0.0.1:{floor_port}"
        yield Stack(
            cluster=cluster,
            database_url=database_url,
            entra=entra,
            livekit=livekit,
            tenant=tenant,
            gateway_url=urls["gateway"],
            entra_url=urls["entra"],
            floor_url=floor_urls[False],
            corked_floor_url=floor_urls[True],
            variant_urls={value: urls[value] for value in variants},
            baseline_url=None
            if baseline is None
            else _baseline(baseline, cluster, common, children, log_dir),
            children=children,
        )


def _baseline(
    checkout: Path, cluster: PostgresCluster, common: dict[str, str], children: list[Child], log_dir: Path
) -> str:
    python = checkout / ".venv" / "bin" / "python"
    if not python.is_file():
        raise RuntimeError(f"--baseline {checkout}: no {python}; run 'uv sync' (or 'make sync') there first")
    env = clean_environment(
        **{**common, "LKPS_DATABASE_URL": cluster.create_database("lkps_bench_baseline")},
        LKPS_IDENTITY_MODE="gateway",
    )
    run_checked([str(python), "-m", "lkps", "migrate"], env=env)
    port = free_port()
    child = Child(
        "lkps-gateway-baseline",
        [str(python), "-m", "lkps", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        log_dir,
        cwd=checkout,
    )
    children.append(child)
    url = f"http://127.0.0.1:{port}"
    wait_until(partial(http_ok, f"{url}/api/health"), timeout=60, what="healthy", child=child)
    return url
