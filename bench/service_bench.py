"""Service benchmark (issues 4 and 7): register, session start, the floor and webhook ingestion, with wrk,
with the service's speedups on and on its plain path (``LKPS_SPEEDUPS=off``), and optionally without each
speedup in turn (``--speedups each``).

Every point runs ``runs`` times, interleaved (run 1 of every point, then run 2, ...), so slow drift on a
shared machine spreads over all points instead of biasing one; the tables show medians and every run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import wrk
from bench.machine import Machine
from bench.processes import run_checked
from bench.service_stack import (
    API_KEY,
    API_SECRET,
    CALLER_EMAIL,
    CALLER_PROFILE,
    CALLER_USER_ID,
    GATEWAY_AGENT_ID,
    GATEWAY_SECRET,
    GATEWAY_SECRET_HEADER,
    Stack,
    running_stack,
)
from bench.stats import fmt, fmt_runs, median, ratio, target_row
from bench.webhook_events import EVENTS_PER_SESSION, write_deliveries
from lkps.speedups import ALL, SPEEDUPS, spelled

WARMUP_SECONDS = 2.0
WEBHOOK_PROBE_SECONDS = 3.0
# Enough for the probe not to run out below 6,000 events/s (a probe that runs out understates the rate).
WEBHOOK_PROBE_EVENTS = 18_000
WEBHOOK_CONNECTIONS = 32
# Each timed webhook run gets this many times the probe's rate x duration distinct events, so none repeats
# even when the probe ran in the VM's slow state and the run in its fast one (about 2x apart).
WEBHOOK_HEADROOM = 2.5
WEBHOOK_MAX_EVENTS = 200_000
# What the runs without one speedup each measure, at this share of the full duration.
EACH_SHARE = 0.5


@dataclass(frozen=True)
class Variant:
    """The gateway-mode service with other speedups than all of them (``LKPS_SPEEDUPS=value``)."""

    key: str  # in point keys
    value: str
    label: str  # in the report
    share: float


BASELINE = "baseline"


def _url(stack: Stack, variant: Variant) -> str:
    if variant.key == BASELINE:
        assert stack.baseline_url is not None
        return stack.baseline_url
    return stack.variant_urls[variant.value]


def _database(variant: Variant | None) -> str:
    return "lkps_bench_baseline" if variant is not None and variant.key == BASELINE else "lkps_bench"


def variants(choice: str) -> list[Variant]:
    """``--speedups``: ``off`` (the default: the plain path beside the speedups), ``each`` (also every
    speedup but one in turn), or ``on`` (the speedups only)."""
    if choice == "on":
        return []
    out = [Variant("off", "off", "plain path", 1.0)]
    if choice == "each":
        out += [Variant(f"no-{n}", spelled(ALL - {n}), f"without `{n}`", EACH_SHARE) for n in SPEEDUPS]
    return out


@dataclass
class Point:
    key: str
    label: str
    url: str
    connections: int
    request_file: Path
    share: float = 1.0  # of the full duration: secondary points run shorter to keep `make bench` near 10 min
    variant: str = "on"  # the Variant key, or on: every speedup
    results: list[wrk.WrkResult] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"BENCH_REQUEST": str(self.request_file)}

    def rps(self) -> float:
        return median([r.rps for r in self.results])

    def p50(self) -> float:
        return median([r.p50_ms for r in self.results])

    def p99(self) -> float:
        return median([r.p99_ms for r in self.results])


@dataclass
class WebhookRun:
    result: wrk.WrkResult
    events: int
    stored: int
    variant: str = "on"

    @property
    def stored_per_s(self) -> float:
        return self.stored / self.result.duration_s


def _request_file(path: Path, method: str, target: str, headers: dict[str, str], body: object) -> Path:
    lines = [f"{method} {target}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    path.write_bytes(("\n".join(lines) + "\n\n" + json.dumps(body)).encode())
    return path


def _gateway_headers(client_id: str, *, profile: bool) -> dict[str, str]:
    headers = {
        "client-id": client_id,
        "user-id": CALLER_USER_ID,
        "x-user-email": CALLER_EMAIL,
        GATEWAY_SECRET_HEADER: GATEWAY_SECRET,
    }
    if profile:
        headers["user-profile"] = CALLER_PROFILE
    return headers


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:500]}")


def _prepare(stack: Stack, work: Path, chosen: list[Variant]) -> list[Point]:
    """Register the session agents, warm each process's Graph cache, write one request file per endpoint."""
    apps = stack.apps
    entra_token = stack.entra_token()
    gateways = [stack.gateway_url, *(_url(stack, v) for v in chosen)]
    with httpx.Client(timeout=30) as http:
        for url in gateways:
            for agent_id, enforce in ((apps.enforced_agent_id, True), (apps.open_agent_id, False)):
                _check(
                    http.post(
                        f"{url}/api/agent/register",
                        json={"service_config": {"enforce_client_authz": enforce}},
                        headers=_gateway_headers(agent_id, profile=False),
                    ),
                    f"registering agent (enforce_client_authz={enforce}) at {url}",
                )
            for agent_id in (apps.enforced_agent_id, apps.open_agent_id):
                # the first session start for the enforcing agent asks Graph; the answer is cached from here
                _check(
                    http.post(
                        f"{url}/api/session/start",
                        json={"agent_entra_app_id": agent_id, "metadata": {"ticket": 42}},
                        headers=_gateway_headers(apps.client_app_id, profile=True),
                    ),
                    f"warming session start at {url}",
                )
        _check(
            http.post(
                f"{stack.entra_url}/api/agent/register",
                json={},
                headers={"Authorization": f"Bearer {entra_token}"},
            ),
            "entra-mode register",
        )
    graph_calls = len(stack.entra.graph_requests)
    if graph_calls != len(gateways):
        raise RuntimeError(
            f"expected one Graph call per gateway-mode process while warming the caches, saw {graph_calls}"
        )

    register_body = {"service_config": {"enforce_client_authz": True}}
    files = {
        "floor-mint": _request_file(work / "floor-mint.req", "POST", "/mint", {}, register_body),
        "floor-constant": _request_file(work / "floor-constant.req", "POST", "/constant", {}, register_body),
        "register": _request_file(
            work / "register.req",
            "POST",
            "/api/agent/register",
            _gateway_headers(GATEWAY_AGENT_ID, profile=False),
            register_body,
        ),
        "register-entra": _request_file(
            work / "register-entra.req",
            "POST",
            "/api/agent/register",
            {"Authorization": f"Bearer {entra_token}"},
            register_body,
        ),
        "session": _request_file(
            work / "session.req",
            "POST",
            "/api/session/start",
            _gateway_headers(apps.client_app_id, profile=True),
            {"agent_entra_app_id": apps.enforced_agent_id, "metadata": {"ticket": 42}},
        ),
        "session-open": _request_file(
            work / "session-open.req",
            "POST",
            "/api/session/start",
            _gateway_headers(apps.client_app_id, profile=True),
            {"agent_entra_app_id": apps.open_agent_id, "metadata": {"ticket": 42}},
        ),
    }
    gw, en, fl, cfl = stack.gateway_url, stack.entra_url, stack.floor_url, stack.corked_floor_url
    specs = [
        ("floor-mint", "floor: bare Starlette, mints the agent token", fl, (32, 128), 1.0),
        ("floor-constant", "floor: bare Starlette, constant JSON", fl, (32,), 0.5),
        (
            "floor-constant-corked",
            "floor: bare Starlette, constant JSON, on lkps's corked protocol",
            cfl,
            (32,),
            0.5,
        ),
        ("register", "`POST /api/agent/register` (gateway)", gw, (32, 128), 1.0),
        ("register-entra", "`POST /api/agent/register` (entra: JWT validated)", en, (32,), 0.5),
        ("session", "`POST /api/session/start` (authz on, Graph cache warm)", gw, (32, 128), 1.0),
        ("session-open", "`POST /api/session/start` (enforce_client_authz=false)", gw, (32,), 0.5),
    ]
    points = [
        Point(f"{key}@{c}", label, base, c, files[key.removesuffix("-corked")], share)
        for key, label, base, conns, share in specs
        for c in conns
    ]
    for variant in chosen:
        url = _url(stack, variant)
        full = variant.share == 1.0  # the plain path is measured like the speedups; "each" at 32 only
        for key, what in (
            ("register", "`POST /api/agent/register` (gateway"),
            ("session", "`POST /api/session/start` (authz on"),
        ):
            for c in (32, 128) if full else (32,):
                label = f"{what}, {variant.label})"
                points.append(
                    Point(f"{key}~{variant.key}@{c}", label, url, c, files[key], variant.share, variant.key)
                )
    return points


def _webhook_url(stack: Stack, variant: Variant | None = None) -> str:
    base = stack.gateway_url if variant is None else _url(stack, variant)
    return f"{base}/livekit/webhook"


def _stored_events(stack: Stack, variant: Variant | None = None) -> int:
    return stack.count("SELECT count(*) FROM webhook_events", _database(variant))


def _settle(stack: Stack, timeout: float = 20.0) -> None:
    """Wait until the audit writer has drained what the last point queued, so it does not slow the next."""
    query = "SELECT (SELECT count(*) FROM agent_registrations) + (SELECT count(*) FROM sessions)"
    deadline = time.monotonic() + timeout
    last = stack.count(query)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = stack.count(query)
        if now == last:
            return
        last = now


def _webhook_run(
    stack: Stack, path: Path, events: int, duration: float, variant: Variant | None = None
) -> WebhookRun:
    before = _stored_events(stack, variant)
    url = _webhook_url(stack, variant)
    result = wrk.run(url, "replay.lua", WEBHOOK_CONNECTIONS, duration, {"BENCH_REQUESTS": str(path)})
    stored = _stored_events(stack, variant) - before
    return WebhookRun(result, events, stored, "on" if variant is None else variant.key)


@dataclass
class ServiceResults:
    machine: Machine
    duration: float
    runs: int
    variants: list[Variant]
    points: list[Point]
    webhook: list[WebhookRun]  # with every speedup
    variant_webhooks: dict[str, list[WebhookRun]]  # by Variant key
    webhook_events_per_run: int
    register_ok: int
    audit_rows: int
    audit_dropped: int
    session_ok: int
    session_rows: int
    rooms_completed: int
    rooms_total: int
    commands: list[str]


def run(
    duration: float, runs: int, work: Path, speedups: str = "off", baseline: Path | None = None
) -> ServiceResults:
    """``speedups``: which variants run beside the speedups (:func:`variants`); ``baseline``: another
    checkout whose service runs beside (an A/B in one run)."""
    machine = Machine()
    machine.add_tool("wrk", ["wrk", "--version"])
    chosen = variants(speedups)
    values = [v.value for v in chosen]
    if baseline is not None:
        commit = run_checked(["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"]).strip()
        chosen.append(Variant(BASELINE, "", f"baseline {commit}", 1.0))
    with running_stack(work, values, baseline) as stack:
        machine.add_tool("PostgreSQL", [str(stack.cluster.bin / "postgres"), "--version"])
        points = _prepare(stack, work, chosen)
        warmups: list[tuple[Point, wrk.WrkResult]] = []
        for point in points:
            if point.connections == 32:
                warmups.append((point, wrk.run(point.url, "post.lua", 32, WARMUP_SECONDS, point.env)))
                _settle(stack)

        # Each webhook target gets distinct events: a probe sizes its runs' sets (none repeats in a run).
        targets: list[Variant | None] = [None, *chosen]
        next_session = 0
        webhook_files: dict[str, list[tuple[Path, int]]] = {}
        per_run = 0
        for target in targets:
            key = "on" if target is None else target.key
            share = 1.0 if target is None else target.share
            probe_file = work / f"webhooks-{key}-probe.txt"
            sessions = write_deliveries(
                probe_file, events=WEBHOOK_PROBE_EVENTS, first_session=next_session, **_signing(stack)
            )
            next_session += sessions
            probe = _webhook_run(
                stack, probe_file, sessions * EVENTS_PER_SESSION, WEBHOOK_PROBE_SECONDS, target
            )
            events = min(
                WEBHOOK_MAX_EVENTS,
                math.ceil(
                    max(probe.stored_per_s, 500.0) * wrk.whole_seconds(duration * share) * WEBHOOK_HEADROOM
                ),
            )
            per_run = max(per_run, events)
            webhook_files[key] = []
            for index in range(runs):
                path = work / f"webhooks-{key}-{index + 1}.txt"
                count = write_deliveries(path, events=events, first_session=next_session, **_signing(stack))
                next_session += count
                webhook_files[key].append((path, count * EVENTS_PER_SESSION))

        webhook: list[WebhookRun] = []
        variant_webhooks: dict[str, list[WebhookRun]] = {v.key: [] for v in chosen}
        for index in range(runs):
            machine.probe()
            for point in points:
                seconds = duration * point.share
                point.results.append(wrk.run(point.url, "post.lua", point.connections, seconds, point.env))
                _settle(stack)
            for target in targets:
                if target is None:
                    path, events = webhook_files["on"][index]
                    webhook.append(_webhook_run(stack, path, events, duration))
                else:
                    path, events = webhook_files[target.key][index]
                    seconds = duration * target.share
                    variant_webhooks[target.key].append(_webhook_run(stack, path, events, seconds, target))

        stack.stop_services()  # graceful: the audit queue is flushed before the counts below
        # The baseline writes to a database of its own: the checks below count this checkout's rows.
        ours = [p for p in points if p.variant != BASELINE]
        register_results = [r for p in ours if p.key.startswith("register") for r in p.results]
        register_results += [r for p, r in warmups if p.key.startswith("register") and p in ours]
        session_results = [r for p in ours if p.key.startswith("session") for r in p.results]
        session_results += [r for p, r in warmups if p.key.startswith("session") and p in ours]
        results = ServiceResults(
            machine=machine,
            duration=duration,
            runs=runs,
            variants=chosen,
            points=points,
            webhook=webhook,
            variant_webhooks=variant_webhooks,
            webhook_events_per_run=per_run,
            register_ok=sum(r.ok for r in register_results),
            audit_rows=stack.count("SELECT count(*) FROM agent_registrations"),
            audit_dropped=_audit_dropped(stack),
            session_ok=sum(r.ok for r in session_results),
            session_rows=stack.count("SELECT count(*) FROM sessions WHERE room_name NOT LIKE 'BENCH%'"),
            rooms_completed=stack.count(
                "SELECT count(*) FROM sessions WHERE room_name LIKE 'BENCH%' AND status = 'completed'"
            ),
            rooms_total=stack.count("SELECT count(*) FROM sessions WHERE room_name LIKE 'BENCH%'"),
            commands=_commands(points, stack, duration, chosen),
        )
    machine.finish()
    return results


def _audit_dropped(stack: Stack) -> int:
    """Audit records each lkps process reports dropped (queue full) in its "lkps stopped" log line."""
    dropped = 0
    for child in stack.children:
        for line in child.log.read_text(errors="replace").splitlines():
            if '"lkps stopped"' in line:
                dropped += int(json.loads(line).get("audit_dropped", 0))
    return dropped


def _signing(stack: Stack) -> dict[str, str]:
    return {"api_key": API_KEY, "api_secret": API_SECRET, "agent_app_id": stack.apps.open_agent_id}


def _commands(points: list[Point], stack: Stack, duration: float, chosen: list[Variant]) -> list[str]:
    seen: set[str] = set()
    out = []
    for point in points:
        line = wrk.display(
            f"{point.url}/",
            "post.lua",
            point.connections,
            duration * point.share,
            {"BENCH_REQUEST": point.request_file.name},
        )
        if line not in seen:
            seen.add(line)
            out.append(line)
    for target in [None, *chosen]:
        key = "on" if target is None else target.key
        share = 1.0 if target is None else target.share
        out.append(
            wrk.display(
                _webhook_url(stack, target),
                "replay.lua",
                WEBHOOK_CONNECTIONS,
                duration * share,
                {"BENCH_REQUESTS": f"webhooks-{key}-N.txt"},
            )
        )
    for variant in chosen:
        what = variant.label if variant.key == BASELINE else f"LKPS_SPEEDUPS={variant.value}"
        out.append(f"# {_url(stack, variant)}: lkps serve, {what}")
    return out


def _setup_line(results: ServiceResults) -> str:
    others = ""
    if results.variants:
        others = (
            " The plain path is the same gateway-mode service with `LKPS_SPEEDUPS=off`, its own process"
            + (
                "; each `without` row, one with every speedup but that one"
                f" ({wrk.whole_seconds(results.duration * EACH_SHARE)} s per point)."
                if len(results.variants) > 1
                else "."
            )
        )
    return (
        "- Setup: one `lkps serve` process (uvicorn, one worker, production logging: JSON at INFO, every"
        " speedup on: the default) on PostgreSQL 15 (fsync off, loopback) with auditing on; Entra/Graph and"
        " LiveKit stand-ins; wrk on the same machine (it shares the CPUs with the service and PostgreSQL)."
        f" {results.duration:g} s per point"
        f" ({wrk.whole_seconds(results.duration / 2)} s for the entra-mode, constant-floor and authz-off"
        " points),"
        f" {results.runs} run(s) interleaved, medians; warm-up {WARMUP_SECONDS:g} s per endpoint first."
        + others
    )


def _throughput_table(results: ServiceResults) -> list[str]:
    lines = [
        "| endpoint | connections | req/s (median) | p50 ms | p99 ms | non-2xx | req/s per run |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in results.points:
        errors = sum(r.non_2xx + r.socket_errors for r in p.results)
        runs = fmt_runs([r.rps for r in p.results])
        lines.append(
            f"| {p.label} | {p.connections} | {fmt(p.rps())} | {fmt(p.p50(), 2)} | {fmt(p.p99(), 2)} |"
            f" {errors} | {runs} |"
        )
    hooks = [("`POST /livekit/webhook` (events stored/s)", results.webhook)]
    hooks += [
        (f"`POST /livekit/webhook` (events stored/s, {v.label})", results.variant_webhooks[v.key])
        for v in results.variants
    ]
    for label, hook in hooks:
        p50 = median([w.result.p50_ms for w in hook])
        p99 = median([w.result.p99_ms for w in hook])
        errors = sum(w.result.non_2xx + w.result.socket_errors for w in hook)
        runs = fmt_runs([w.stored_per_s for w in hook])
        lines.append(
            f"| {label} | {WEBHOOK_CONNECTIONS} | {fmt(_rate(hook))} |"
            f" {fmt(p50, 2)} | {fmt(p99, 2)} | {errors} | {runs} |"
        )
    return lines


def _rate(hook: list[WebhookRun]) -> float:
    return median([w.stored_per_s for w in hook])


def _webhook_rate(results: ServiceResults) -> float:
    return _rate(results.webhook)


def _speedups_tables(results: ServiceResults) -> list[str]:
    """The speedups against the plain path, this checkout against a baseline (``--baseline``), and
    (``--speedups each``) what each speedup buys."""
    if not results.variants:
        return []

    def rps(key: str) -> float:
        found = [p for p in results.points if p.key == key]
        return found[0].rps() if found else float("nan")

    lines: list[str] = []
    for other in results.variants:
        if other.key not in ("off", BASELINE):
            continue
        if other.key == "off":
            title = "Speedups on (the default) and the plain path (`LKPS_SPEEDUPS=off`), in the same run:"
            header = "| endpoint | connections | speedups on | plain path | plain / on |"
        else:
            title = f"This checkout against the {other.label} (both with their defaults), in the same run:"
            header = "| endpoint | connections | this checkout | baseline | this / baseline |"
        lines += [*([""] if lines else []), title, "", header, "|---|---:|---:|---:|---:|"]
        api = (("register", "`POST /api/agent/register`"), ("session", "`POST /api/session/start`"))
        for key, label in api:
            for c in (32, 128):
                on, theirs = rps(f"{key}@{c}"), rps(f"{key}~{other.key}@{c}")
                change = ratio(theirs, on) if other.key == "off" else ratio(on, theirs)
                lines.append(f"| {label} (req/s) | {c} | {fmt(on)} | {fmt(theirs)} | {fmt(change, 2)} |")
        on, theirs = _webhook_rate(results), _rate(results.variant_webhooks[other.key])
        change = ratio(theirs, on) if other.key == "off" else ratio(on, theirs)
        lines.append(
            f"| `POST /livekit/webhook` (events stored/s) | {WEBHOOK_CONNECTIONS} | {fmt(on)} |"
            f" {fmt(theirs)} | {fmt(change, 2)} |"
        )
    on = _webhook_rate(results)
    each = [v for v in results.variants if v.key not in ("off", BASELINE)]
    if not each:
        return lines
    lines += [
        "",
        "What each speedup buys: every speedup on but one, 32 connections, against every speedup on (the"
        " change in throughput when that one is off):",
        "",
        "| off | register req/s | change | session start req/s | change | webhook events/s | change |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    on_register, on_session = rps("register@32"), rps("session@32")
    for v in each:
        register, session = rps(f"register~{v.key}@32"), rps(f"session~{v.key}@32")
        hook = _rate(results.variant_webhooks[v.key])
        lines.append(
            f"| `{v.key.removeprefix('no-')}` | {fmt(register)} | {_change(register, on_register)} |"
            f" {fmt(session)} | {_change(session, on_session)} | {fmt(hook)} | {_change(hook, on)} |"
        )
    return lines


def _change(value: float, base: float) -> str:
    relative = ratio(value - base, base)
    return "n/a" if relative != relative else f"{relative:+.0%}"


def _targets_table(results: ServiceResults) -> list[str]:
    def rps(key: str) -> float:
        return next(p for p in results.points if p.key == key).rps()

    register_p99 = next(p for p in results.points if p.key == "register@32").p99()
    rows = [
        target_row("register / floor (mint), 32 conn.", ratio(rps("register@32"), rps("floor-mint@32")), 0.5),
        target_row(
            "register / floor (mint), 128 conn.", ratio(rps("register@128"), rps("floor-mint@128")), 0.5
        ),
        target_row(
            "register / floor (constant JSON), 32 conn.",
            ratio(rps("register@32"), rps("floor-constant@32")),
            0.5,
        ),
        "| register / floor (constant JSON, on lkps's corked protocol), 32 conn. |"
        f" {fmt(ratio(rps('register@32'), rps('floor-constant-corked@32')), 2)} | none: for comparison | |",
        target_row("register p99 at 32 conn. (ms)", register_p99, 12.0, at_least=False),
        target_row("session start / register, 32 conn.", ratio(rps("session@32"), rps("register@32")), 0.8),
        target_row(
            "session start / register, 128 conn.", ratio(rps("session@128"), rps("register@128")), 0.8
        ),
        target_row("webhook events stored per second", _webhook_rate(results), 2000.0, digits=0),
    ]
    return ["| ratio / figure | value | target | met |", "|---|---:|---|---|", *rows]


def _checks(results: ServiceResults) -> list[str]:
    every_hook = [*results.webhook, *(w for hook in results.variant_webhooks.values() for w in hook)]
    wrapped = sum(w.result.wrapped for w in every_hook)
    processes = 1 + len(results.variants)
    return [
        "Checks made in the same run (the numbers above mean something only if these hold):",
        "",
        f"- Auditing kept up: {results.audit_rows:,} `agent_registrations` rows after a graceful stop for"
        f" {results.register_ok:,} successful `register` responses counted by wrk (rows may exceed"
        " responses: wrk does not count requests still in flight when it stops); audit records the"
        f" services reported dropped: {results.audit_dropped}.",
        f"- Session starts recorded: {results.session_rows:,} `sessions` rows (`requested`) for"
        f" {results.session_ok:,} successful responses (every session its own room, so rows may exceed"
        " responses, as for `register`, but not fall short).",
        "- Webhooks: every timed run replayed distinct, validly signed deliveries (up to"
        f" {results.webhook_events_per_run:,} per run, whole sessions of {EVENTS_PER_SESSION} events);"
        " events/s = rows added to `webhook_events` during the run / its duration;"
        f" {results.rooms_completed:,} of {results.rooms_total:,} rooms reached `completed` (the others"
        " still had events unsent when their run ended); replays that ran out of distinct events:"
        f" {wrapped}.",
        f"- Each gateway-mode process's Graph cache was warmed by one session start before the runs (exactly"
        f" {processes} Graph call(s) seen).",
    ]


def markdown(results: ServiceResults) -> str:
    """The service section of docs/benchmarks.md."""
    lines = [
        "## Service (issues 4 and 7)",
        "",
        results.machine.markdown(),
        _setup_line(results),
        "",
        *_throughput_table(results),
        "",
        *_targets_table(results),
        "",
        *_speedups_tables(results),
        *([""] if results.variants else []),
        *_checks(results),
        "",
        "Commands (ports are this run's; `bench/service_bench.py` writes the `BENCH_REQUEST` files):",
        "",
        "```",
        "make bench BENCH=service",
        *results.commands,
        "```",
    ]
    return "\n".join(lines)
