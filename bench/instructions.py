"""CPU instructions per request, counted by valgrind's cachegrind: a measure the machine's state cannot move.

The wall-clock benchmark (``make bench``) swings by 2x on the VMs these numbers come from (see the README's
CPU probe), which hides changes of a few percent. This counts the user-space instructions a whole server
process (uvicorn, the app, its audit writer and log handler) executes per request under the same kind of load
(32 keep-alive connections, each sending its next request as soon as the answer arrives): each server runs
twice under cachegrind, for a short and a long series of the same request, and the difference of the two
totals divided by the difference of the request counts is the cost of one request, free of start-up and
shutdown. Instructions are not time (system calls, cache misses and crypto instructions valgrind does not
emulate all differ), so compare variants of the same endpoint, or the floor with register, not absolute times.

The service's endpoints are counted with its speedups on and on the plain path (``LKPS_SPEEDUPS=off``);
``--speedups each`` adds a run without each speedup in turn, to say what each one buys.

Run: ``make bench-instructions`` (or ``uv run python -m bench.instructions --requests 400 1600``). It prints a
table; nothing is written to docs/benchmarks.md. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.floor_app import AGENT_APP_ID
from bench.processes import PYTHON, Child, clean_environment, free_port, run_checked, wait_until
from bench.service_bench import _gateway_headers
from bench.service_stack import API_KEY, API_SECRET, GATEWAY_SECRET, PostgresCluster, port_open
from bench.webhook_events import EVENTS_PER_SESSION, signed_deliveries
from lkps.speedups import SPEEDUPS, parse, spelled

CONNECTIONS = 32
METRICS_OFF = "on, LKPS_METRICS=false"  # the --metrics-off column
CLIENT_APP_ID = "5b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"  # the calling client app of session starts
# The agent session starts go to: not the one `register` registers (with client authorization) in the runs.
SESSION_AGENT_ID = "3c9e4b2a-6d1f-4e8a-b7c5-2a9d8e1f0b6c"
_BODY = b'{"service_config": {"enforce_client_authz": true}}'
# The identity headers the wall-clock benchmark's gateway-mode register and session start send.
_GATEWAY_HEADERS = "".join(f"{k}: {v}\r\n" for k, v in _gateway_headers(AGENT_APP_ID, profile=False).items())
_CALLER_HEADERS = "".join(f"{k}: {v}\r\n" for k, v in _gateway_headers(CLIENT_APP_ID, profile=True).items())
# Session starts go to an agent registered (stored before the runs) without client authorization, so no
# request waits on Graph: the count is the service's own work.
_SESSION_BODY = json.dumps({"agent_entra_app_id": SESSION_AGENT_ID, "metadata": {"ticket": 42}}).encode()
_REGISTERED_AGENT = (
    "INSERT INTO agents (entra_app_id, enforce_client_authz, first_registered_at, last_registered_at,"  # noqa: S608
    f" last_worker_identity, registration_count, token_expires_at) VALUES ('{SESSION_AGENT_ID}', false,"
    f" now(), now(), 'agent-{SESSION_AGENT_ID}-bench', 1, now() + interval '1 day')"
)


@dataclass(frozen=True)
class Target:
    name: str
    module: tuple[str, ...]  # ``python -m ...`` arguments before --host/--port
    path: str
    headers: str  # extra request header lines, CRLF-terminated
    webhooks: bool = False  # each request a distinct signed LiveKit delivery instead of the same body
    body: bytes = _BODY
    warm_up: bool = False  # one request answered before the counted ones

    @property
    def service(self) -> bool:
        """An endpoint of lkps, counted for each speedup variant (the floor has none)."""
        return self.module[0] == "lkps"


def variants(choice: str) -> dict[str, str]:
    """``--speedups``: column name -> ``LKPS_SPEEDUPS`` value. ``on``, ``on,off`` (the default), or ``each``:
    on, off, and every speedup but one in turn."""
    if choice == "each":
        return {"on": "on", "off": "off", **{f"without {n}": spelled(set(SPEEDUPS) - {n}) for n in SPEEDUPS}}
    chosen = [part.strip() for part in choice.split(",") if part.strip()]
    return {name: name for name in chosen}


TARGETS = {
    "floor-constant": Target("floor-constant", ("bench.floor_app",), "/constant", ""),
    "floor-mint": Target("floor-mint", ("bench.floor_app",), "/mint", ""),
    "register": Target("register", ("lkps", "serve"), "/api/agent/register", _GATEWAY_HEADERS),
    "session": Target(
        "session", ("lkps", "serve"), "/api/session/start", _CALLER_HEADERS, body=_SESSION_BODY, warm_up=True
    ),
    "webhook": Target("webhook", ("lkps", "serve"), "/livekit/webhook", "", webhooks=True),
}


def _request(target: Target, port: int, body: bytes | None = None, headers: str = "") -> bytes:
    body = target.body if body is None else body
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{target.headers}{headers}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _requests(target: Target, port: int, count: int, first_session: int) -> list[bytes]:
    if not target.webhooks:
        return [_request(target, port)] * count
    sessions = -(-count // EVENTS_PER_SESSION)
    deliveries = signed_deliveries(API_KEY, API_SECRET, AGENT_APP_ID, first_session, sessions)[:count]
    return [
        _request(target, port, body.encode(), f"Authorization: {token}\r\n") for token, body in deliveries
    ]


async def _drive(port: int, requests: list[bytes], connections: int = CONNECTIONS) -> int:
    """Send ``requests`` over ``connections`` keep-alive connections; the number answered 200."""
    pending, ok = iter(requests), 0

    async def connection() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in pending:
            writer.write(request)
            status = (await reader.readline()).split()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            ok += status[1:2] == [b"200"]
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return ok


async def _warm_up(port: int, request: bytes, attempts: int = 5) -> None:
    """One request until it answers 200: session start's first registry read opens the pool, which under
    valgrind outlasts the read's 2 s timeout (a 503). Both runs warm up alike, so the difference of their
    totals is still the counted requests'."""
    for _ in range(attempts):
        if await _drive(port, [request], connections=1):
            return
    raise RuntimeError(f"no 200 from the warm-up request in {attempts} attempts")


def _instructions(
    target: Target, env: dict[str, str], count: int, first_session: int, work: Path, label: str
) -> int:
    """Total instructions of one server process that answered ``count`` requests."""
    port = free_port()
    report = work / f"{label}-{count}.valgrind"
    child = Child(
        f"{label}-{count}",
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--log-file={report}",
            "--cachegrind-out-file=/dev/null",
            PYTHON,
            "-m",
            *target.module,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        work,
    )
    try:
        # about 50x slower under valgrind: start-up takes a while
        wait_until(lambda: port_open(port), timeout=300, what=f"{target.name} listening", child=child)
        if target.warm_up:
            asyncio.run(_warm_up(port, _request(target, port)))
        answered = asyncio.run(_drive(port, _requests(target, port, count, first_session)))
        if answered != count:
            raise RuntimeError(
                f"{target.name}: {count - answered} of {count} requests failed; see {child.log}"
            )
    finally:
        child.stop(timeout=300)
    found = re.search(r"I\s+refs:\s+([\d,]+)", report.read_text())
    if found is None:
        raise RuntimeError(f"no instruction count in {report}")
    return int(found.group(1).replace(",", ""))


def measure(
    names: Sequence[str],
    counts: tuple[int, int],
    work: Path,
    speedups: dict[str, str],
    extra_env: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict[str, float]]:
    """Instructions per request of each target (row) for each speedups variant (column), the column's
    ``extra_env`` set as well."""
    extra_env = extra_env or {}
    cluster = PostgresCluster()
    cluster.init()
    cluster.start()
    try:
        env = clean_environment(
            LIVEKIT_URL="ws://127.0.0.1:9",  # never dialled: register mints and audits, webhooks come in
            LIVEKIT_API_KEY=API_KEY,
            LIVEKIT_API_SECRET=API_SECRET,
            LKPS_AGENT_TOKEN_SECRET="lkps-bench-agent-key-" + "a" * 40,
            LKPS_DATABASE_URL=cluster.create_database("lkps_instructions"),
            LKPS_IDENTITY_MODE="gateway",
            LKPS_GATEWAY_SHARED_SECRET=GATEWAY_SECRET,
            # session start reads the agent once and then from its cache, as under load outside valgrind
            LKPS_REGISTRY_CACHE_TTL="3600",
        )
        run_checked([PYTHON, "-m", "lkps", "migrate"], env=env)
        cluster.psql(_REGISTERED_AGENT, database="lkps_instructions")
        per_request: dict[str, dict[str, float]] = {}
        first_session = 0
        for name in names:
            target = TARGETS[name]
            per_request[name] = {}
            for column, value in speedups.items() if target.service else [("on", "on")]:
                # distinct sessions in each run: webhooks stored before would be duplicates, cheaper to answer
                run_env = {**env, "LKPS_SPEEDUPS": value, **extra_env.get(column, {})}
                label = f"{name}-{column.replace(' ', '-')}"
                low = _instructions(target, run_env, counts[0], first_session, work, label)
                first_session += counts[0]
                high = _instructions(target, run_env, counts[1], first_session, work, label)
                first_session += counts[1]
                per_request[name][column] = (high - low) / (counts[1] - counts[0])
                print(f"{name} ({column}): {per_request[name][column]:,.0f} instructions/request", flush=True)
        return per_request
    finally:
        cluster.destroy()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(TARGETS), help=f"comma list of {', '.join(TARGETS)}")
    parser.add_argument("--requests", nargs=2, type=int, default=(400, 1600), metavar=("SHORT", "LONG"))
    parser.add_argument(
        "--speedups",
        default="on,off",
        help="LKPS_SPEEDUPS variants to count the service's endpoints with: a comma list (default on,off),"
        " or 'each' (on, off, and every speedup but one in turn)",
    )
    parser.add_argument(
        "--metrics-off",
        action="store_true",
        help="also count the service's endpoints with every speedup on and LKPS_METRICS=false (what the"
        " metrics cost a request)",
    )
    args = parser.parse_args(argv)
    columns = variants(args.speedups)
    extra_env = {}
    if args.metrics_off:
        columns[METRICS_OFF] = "on"
        extra_env[METRICS_OFF] = {"LKPS_METRICS": "false"}
    for value in columns.values():
        if parse(value)[1]:
            parser.error(f"--speedups: {value!r} names unknown speedups; names: {', '.join(SPEEDUPS)}")
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    short, long = args.requests
    if not 0 < short < long:
        parser.error("--requests: give two counts, the first smaller (e.g. 400 1600)")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed: run 'make bench-instructions' (installs it) or apt-get it")
    work = Path(tempfile.mkdtemp(prefix="lkps-instructions-"))
    print(f"server logs and valgrind reports: {work}", flush=True)
    result = measure(names, (short, long), work, columns, extra_env)
    print(table(result, list(columns)))
    if "register" in result and "floor-constant" in result and "on" in result["register"]:
        ratio = result["floor-constant"]["on"] / result["register"]["on"]
        print(f"\nfloor-constant / register (speedups on): {ratio:.3f}")
    return 0


def table(result: dict[str, dict[str, float]], columns: list[str]) -> str:
    """Instructions per request, one column per variant; after the first, each with its change from it."""
    lines = [
        "",
        "| endpoint | "
        + " | ".join(f"LKPS_SPEEDUPS {c}" if c in ("on", "off") else c for c in columns)
        + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, counted in result.items():
        base = counted.get(columns[0])
        cells = []
        for column in columns:
            value = counted.get(column)
            if value is None:
                cells.append("")
            elif column == columns[0] or not base:
                cells.append(f"{value:,.0f}")
            else:
                cells.append(f"{value:,.0f} ({(value - base) / base:+.0%})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
