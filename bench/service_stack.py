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
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.processes import (
    PYTHON,
    Child,
    clean_environment,
    free_port,
    http_ok,
    run_checked,
    wait_until,
)
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.tenant import App, Tenant
from tests.support.postgres import PostgresCluster

API_KEY = "APIbench" + secrets.token_hex(8)
API_SECRET = secrets.token_urlsafe(48)
# What the gateway-mode services require on every request (LKPS_GATEWAY_SHARED_SECRET in x-gateway-secret).
GATEWAY_SECRET = secrets.token_urlsafe(48)
GATEWAY_SECRET_HEADER = "x-gateway-secret"  # noqa: S105 (a header's name)
# The platform's agent-token key every lkps serve needs (LKPS_AGENT_TOKEN_SECRET).
AGENT_TOKEN_SECRET = secrets.token_urlsafe(48)
# Identity headers an upstream gateway injects (lkps defaults); the register load comes from one agent.
GATEWAY_AGENT_ID = str(uuid.uuid4())
CALLER_USER_ID = str(uuid.uuid4())
CALLER_EMAIL = "jane.doe@example.com"
CALLER_PROFILE = '{"displayName": "Jane Doe", "email": "jane.doe@example.com", "cwid": "JDOE1"}'


@dataclass(frozen=True)
class BenchApps:
    """Who calls the service in the benchmark: an enforcing agent, its pre-authorized client, an agent no
    client is checked for (never registered in Entra), and an agent that registers in entra mode."""

    enforced_agent_id: str
    open_agent_id: str
    client_app_id: str
    entra_agent: App


def _bench_apps(tenant: Tenant) -> BenchApps:
    enforced = tenant.add_agent("enforcing agent")
    client = tenant.add_client("client", authorized_for=[enforced])
    return BenchApps(
        enforced_agent_id=enforced.app_id,
        open_agent_id=str(uuid.uuid4()),
        client_app_id=client.app_id,
        entra_agent=tenant.add_agent("entra-mode agent"),
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
    apps: BenchApps
    gateway_url: str
    entra_url: str
    floor_url: str
    corked_floor_url: str  # the same floor on lkps's corked HTTP protocol (lkps.speedups.http_protocol)
    variant_urls: dict[str, str]  # LKPS_SPEEDUPS value -> a gateway-mode lkps serve running with it
    baseline_url: str | None  # the baseline checkout's gateway-mode lkps serve
    children: list[Child]

    def entra_token(self) -> str:
        """A real stand-in token for the entra-mode agent (minted once, before the timed runs)."""
        return self.tenant.token(self.apps.entra_agent)

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
        tenant = Tenant(entra, platform_display_name="platform")
        apps = _bench_apps(tenant)
        common = {
            "LIVEKIT_URL": livekit.ws_url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "LKPS_AGENT_TOKEN_SECRET": AGENT_TOKEN_SECRET,
            "LKPS_DATABASE_URL": database_url,
            "LKPS_GATEWAY_SHARED_SECRET": GATEWAY_SECRET,
            **tenant.service_env(),
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
            apps=apps,
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
