"""SDK benchmark (issue 3): process start to "registered" and resident memory of an SDK worker against a
plain livekit-agents worker with a static key (same LiveKit stand-in, same run); a renewal during a job.

The SDK worker goes the production way: Entra stand-in token (service principal) -> the real ``lkps serve``
(entra mode, SQLite) -> LiveKit stand-in. "Registered" is the moment the LiveKit stand-in accepted the
worker's ``RegisterWorkerRequest``.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import sysconfig
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from livekit import api

from bench.machine import Machine
from bench.memory import TreeMemory, tree_memory
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
from bench.stats import fmt, median, ratio, verdict
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.tenant import Tenant

AGENTS = REPO / "bench" / "agents"
TOKEN_TTL = 60  # the service's minimum: the SDK renews at half-life, 30 s in
SETTLE_TIMEOUT = 20.0
KINDS = ("plain", "sdk")


@dataclass
class SdkStack:
    entra: EntraStandIn
    livekit: LiveKitStandIn
    tenant: Tenant
    platform_url: str
    database: Path
    log_dir: Path

    def agent_env(self) -> tuple[str, dict[str, str]]:
        """A fresh agent app allowed to register, and the environment a deployment would give it."""
        agent = self.tenant.add_agent("bench agent")
        env = clean_environment(
            **self.entra.service_principal_env(agent.app_id, agent.secret),
            LIVEKIT_PLATFORM_URL=self.platform_url,
            LIVEKIT_PLATFORM_SCOPE=self.tenant.scope,
            LIVEKIT_PLATFORM_READINESS_HOST="127.0.0.1",
            LIVEKIT_PLATFORM_READINESS_PORT=str(free_port()),
        )
        return agent.app_id, env

    def plain_env(self) -> tuple[str, dict[str, str]]:
        name = f"plain-{uuid.uuid4().hex[:8]}"
        env = clean_environment(
            LIVEKIT_URL=self.livekit.ws_url,
            LIVEKIT_API_KEY=self.livekit.api_key,
            LIVEKIT_API_SECRET=self.livekit.api_secret,
            BENCH_AGENT_NAME=name,
        )
        return name, env

    def registrations(self, app_id: str) -> int:
        with contextlib.closing(sqlite3.connect(self.database, timeout=5)) as db:
            row = db.execute(
                "SELECT count(*) FROM agent_registrations WHERE entra_app_id = ?", (app_id,)
            ).fetchone()
        return int(row[0])


@contextlib.contextmanager
def sdk_stack(log_dir: Path) -> Iterator[SdkStack]:
    api_key, api_secret = "APIbench" + secrets.token_hex(8), secrets.token_urlsafe(48)
    with EntraStandIn() as entra, LiveKitStandIn(api_key=api_key, api_secret=api_secret) as livekit:
        tenant = Tenant(entra, platform_display_name="platform")
        database = log_dir / "lkps-sdk.db"
        port = free_port()
        service = Child(
            "lkps-sdk",
            [PYTHON, "-m", "lkps", "serve", "--host", "127.0.0.1", "--port", str(port)],
            clean_environment(
                LIVEKIT_URL=livekit.ws_url,
                LIVEKIT_API_KEY=api_key,
                LIVEKIT_API_SECRET=api_secret,
                LKPS_AGENT_TOKEN_SECRET=secrets.token_urlsafe(48),
                LKPS_DATABASE_URL=f"sqlite:///{database}",
                LKPS_MIGRATE_ON_START="true",
                LKPS_IDENTITY_MODE="entra",
                LKPS_AGENT_TOKEN_TTL=str(TOKEN_TTL),
                **tenant.service_env(),
            ),
            log_dir,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_ok(f"{url}/api/health"), timeout=60, what="lkps healthy", child=service)
            yield SdkStack(entra, livekit, tenant, url, database, log_dir)
        finally:
            service.stop()


@dataclass(frozen=True)
class Start:
    kind: str
    seconds_to_registered: float
    memory: TreeMemory


def _settled_memory(pid: int) -> TreeMemory:
    """Memory once the worker's process pool is up: process count and total RSS unchanged for 1.5 s."""
    samples: list[TreeMemory] = []
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        samples.append(tree_memory(pid))
        last = samples[-4:]
        if (
            len(last) == 4
            and last[0].processes > 1
            and len({m.processes for m in last}) == 1
            and max(m.tree_rss_mib for m in last) - min(m.tree_rss_mib for m in last)
            < 0.01 * last[-1].tree_rss_mib
        ):
            break
        time.sleep(0.5)
    return samples[-1]


def _start(stack: SdkStack, kind: str, serial: int) -> Start:
    name, env = stack.agent_env() if kind == "sdk" else stack.plain_env()
    script = AGENTS / ("sdk_agent.py" if kind == "sdk" else "plain_agent.py")
    started = time.time()
    child = Child(f"{kind}-{serial}", [PYTHON, str(script), "start"], env, stack.log_dir)
    try:
        worker = stack.livekit.wait_for_worker(name, timeout=120)
        seconds = worker.registered_at.timestamp() - started
        memory = _settled_memory(child.pid)
        if not child.alive():
            raise RuntimeError(f"{kind} worker exited during the measurement:\n{child.tail()}")
    finally:
        child.stop(timeout=30)
    return Start(kind, seconds, memory)


@dataclass
class Renewal:
    seconds_to_renewal: float
    platform_registrations: int
    connections_before: int
    connections_after: int
    same_worker_connected: bool
    job_status_before: str
    job_status_after: str
    job_on_same_worker: bool


def _renewal(stack: SdkStack) -> Renewal:
    """A job in flight across a renewal: the worker must keep its connection and the job."""
    app_id, env = stack.agent_env()
    child = Child("sdk-renewal", [PYTHON, str(AGENTS / "sdk_agent.py"), "start"], env, stack.log_dir)
    try:
        worker = stack.livekit.wait_for_worker(app_id, timeout=120)
        token = (
            api.AccessToken(stack.livekit.api_key, stack.livekit.api_secret)
            .with_identity("bench-caller")
            .with_grants(api.VideoGrants(room_join=True, room="bench-renewal"))
            .with_room_config(
                api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=app_id, metadata="hold")])
            )
            .to_jwt()
        )
        job_id = stack.livekit.join(token).job_ids[0]
        before = stack.livekit.wait_for_job_status(job_id, "JS_RUNNING", timeout=60)
        connections_before = len(stack.livekit.connections)
        registered = stack.registrations(app_id)
        wait_until(
            lambda: stack.registrations(app_id) > registered,
            timeout=TOKEN_TTL * 1.5,
            what="a token renewal",
            child=child,
        )
        renewed_after = time.time() - worker.registered_at.timestamp()
        time.sleep(3)  # a reconnect caused by the renewal would show up within this
        job = stack.livekit.job(job_id)
        same_worker = any(w.id == worker.id and w.connected for w in stack.livekit.workers)
        result = Renewal(
            seconds_to_renewal=renewed_after,
            platform_registrations=stack.registrations(app_id),
            connections_before=connections_before,
            connections_after=len(stack.livekit.connections),
            same_worker_connected=same_worker,
            job_status_before=before.status,
            job_status_after=job.status,
            job_on_same_worker=job.worker_id == worker.id,
        )
        stack.livekit.terminate_job(job_id)
    finally:
        child.stop(timeout=30)
    return result


@dataclass
class SdkResults:
    machine: Machine
    runs: int
    starts: dict[str, list[Start]] = field(default_factory=dict)
    renewal: Renewal | None = None


def _compile_bytecode() -> None:
    """Compile the environment's bytecode, as the agent image does (``UV_COMPILE_BYTECODE=1``): with none,
    and ``PYTHONDONTWRITEBYTECODE`` set (as on the CI machines), every start would compile livekit-agents
    from source again, which doubles its start time and says nothing about the SDK."""
    paths = {sysconfig.get_paths()["purelib"], str(REPO / "sdk" / "src"), str(REPO / "service" / "src")}
    run_checked([PYTHON, "-m", "compileall", "-q", "-j", "0", *sorted(paths)], timeout=600)


def run(runs: int, work: Path) -> SdkResults:
    machine = Machine()
    results = SdkResults(machine, runs, {kind: [] for kind in KINDS})
    _compile_bytecode()
    with sdk_stack(work) as stack:
        for kind in KINDS:  # warm-up, not recorded: the page cache is warm afterwards
            _start(stack, kind, 0)
        for serial in range(1, runs + 1):
            # alternate which kind goes first, so neither always follows the other
            order = KINDS if serial % 2 else tuple(reversed(KINDS))
            for kind in order:
                results.starts[kind].append(_start(stack, kind, serial))
        results.renewal = _renewal(stack)
    machine.finish()
    return results


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _renewal_markdown(renewal: Renewal) -> str:
    reconnects = renewal.connections_after - renewal.connections_before
    return (
        f"Renewal with a job in flight (platform token TTL {TOKEN_TTL} s, so the SDK renews about"
        f" {TOKEN_TTL // 2} s after the token was issued): the renewal came"
        f" {renewal.seconds_to_renewal:.1f} s after the worker registered with LiveKit"
        f" ({renewal.platform_registrations} registrations of the agent seen by the platform);"
        f" new connections to LiveKit across it: {reconnects}; the same worker still"
        f" connected: {_yes(renewal.same_worker_connected)}; the job: {renewal.job_status_before} before,"
        f" {renewal.job_status_after} after, on the same worker: {_yes(renewal.job_on_same_worker)}."
    )


def markdown(results: SdkResults) -> str:
    plain, sdk = results.starts["plain"], results.starts["sdk"]

    def med(starts: list[Start], attr: str) -> float:
        if attr == "seconds":
            return median([s.seconds_to_registered for s in starts])
        return median([getattr(s.memory, attr) for s in starts])

    lines = [
        "## SDK worker (issue 3)",
        "",
        results.machine.markdown(),
        "- Setup: `bench/agents/sdk_agent.py` (the SDK `Worker`: Entra stand-in token by client secret ->"
        " `lkps serve` in entra mode on SQLite -> LiveKit stand-in) and `bench/agents/plain_agent.py`"
        " (livekit-agents `AgentServer` with a static key) with the same options (one idle job process),"
        " started with `python <agent>.py start` against the same LiveKit stand-in, bytecode compiled"
        " beforehand as in the agent image (`UV_COMPILE_BYTECODE=1`); one warm-up start of"
        f" each, then {results.runs} of each, alternating which goes first. Start -> registered: from `Popen`"
        " to the LiveKit stand-in accepting the worker's registration. Memory: once the process tree is"
        " stable (same process count, RSS within 1 % for 1.5 s).",
        "",
        "| measure (median) | plain worker | SDK worker | SDK / plain | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    rows = [
        ("start -> registered (s)", "seconds", 2, 1.10),
        ("RSS, main process (MiB)", "main_rss_mib", 1, 1.05),
        ("RSS, process tree (MiB)", "tree_rss_mib", 1, 1.05),
        ("PSS, process tree (MiB)", "tree_pss_mib", 1, None),
    ]
    for label, attr, digits, target in rows:
        p, s = med(plain, attr), med(sdk, attr)
        r = ratio(s, p)
        target_text = f"≤ {target:.2f} x" if target else "-"
        met = verdict(r, target, at_least=False) if target else "-"
        lines.append(
            f"| {label} | {fmt(p, digits)} | {fmt(s, digits)} | {fmt(r, 3)} | {target_text} | {met} |"
        )
    lines += [
        "",
        "Every run (plain / SDK):",
        "",
        "| run | start -> registered (s) | RSS tree (MiB) | processes |",
        "|---:|---|---|---|",
    ]
    for index, (base, ours) in enumerate(zip(plain, sdk, strict=True), start=1):
        lines.append(
            f"| {index} | {base.seconds_to_registered:.2f} / {ours.seconds_to_registered:.2f} |"
            f" {base.memory.tree_rss_mib:.1f} / {ours.memory.tree_rss_mib:.1f} |"
            f" {base.memory.processes} / {ours.memory.processes} |"
        )
    renewal = results.renewal
    if renewal is not None:
        lines += ["", _renewal_markdown(renewal)]
    lines += [
        "",
        "Commands:",
        "",
        "```",
        "make bench BENCH=sdk",
        "# what bench/sdk_bench.py starts for each run (environment from the stand-ins and lkps):",
        "AZURE_CLIENT_ID=... AZURE_CLIENT_SECRET=... AZURE_TENANT_ID=... AZURE_AUTHORITY_HOST=https://127.0.0.1:...\\",
        "  LIVEKIT_PLATFORM_URL=http://127.0.0.1:... LIVEKIT_PLATFORM_SCOPE=api://.../.default \\",
        "  python bench/agents/sdk_agent.py start",
        "LIVEKIT_URL=ws://127.0.0.1:... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... BENCH_AGENT_NAME=... \\",
        "  python bench/agents/plain_agent.py start",
        "```",
    ]
    return "\n".join(lines)
