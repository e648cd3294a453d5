"""The demo's human-readable report: identities, tokens (never the tokens), renewals, the job, the session's
lifecycle rows, spans and the time each step took."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from demo.steps import Step
from demo.system import System
from livekit_platform_testing.tenant import App, WorkloadIdentity


@dataclass
class DemoFacts:
    """What the demo learned along the way that the system does not keep (the client's view)."""

    agent: WorkloadIdentity | None = None
    client: App | None = None
    agent_package: str = ""
    room: str = ""
    participant_token_expires_at: float | None = None
    job_id: str = ""
    agent_exit_status: int | None = None
    notes: list[str] = field(default_factory=list)


def _time(value: Any) -> str:
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%H:%M:%S")
    return "-"


def _table(rows: Sequence[Sequence[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def render(system: System | None, facts: DemoFacts, steps: Iterable[Step]) -> str:
    lines: list[str] = []
    if system is not None:
        try:
            lines += _system_sections(system, facts)
        except Exception as exc:  # a report from a half-started system still shows the steps
            lines += [f"(could not read the system's state: {type(exc).__name__}: {exc})"]
    lines += ["", "Steps"]
    rows = [(("ok " if s.ok else "FAILED ") + s.name, f"{s.seconds:6.1f} s", s.error) for s in steps]
    lines += _table(rows)
    lines += [f"  note: {n}" for n in facts.notes]
    return "\n".join(lines)


def _system_sections(system: System, facts: DemoFacts) -> list[str]:
    names = {app.app_id: app.display_name for app in system.tenant.apps}
    names[system.tenant.platform.app_id] = "platform"
    lines = ["", f"Identities (Entra stand-in, tenant {system.entra.tenant_id}; all times UTC)"]
    rows = [
        ("platform service", system.tenant.platform.app_id, "client secret (Graph: Application.Read.All)")
    ]
    if facts.agent is not None:
        rows.append(
            (
                "agent",
                facts.agent.app.app_id,
                f"workload identity: federated credential for {facts.agent.subject}",
            )
        )
    if facts.client is not None:
        rows.append(("client app", facts.client.app_id, "client secret, role Session.Start, pre-authorized"))
    lines += _table(rows)

    lines += ["", "Entra access tokens issued (by client and audience)"]
    issued: Counter[tuple[str, str]] = Counter()
    last_exp: dict[tuple[str, str], int] = {}
    for claims in system.entra.issued_tokens:
        key = (str(claims.get("azp") or claims.get("appid")), str(claims.get("aud")))
        issued[key] += 1
        last_exp[key] = max(last_exp.get(key, 0), int(claims["exp"]))
    lines += _table(
        [
            (
                names.get(c, c),
                "-> " + names.get(a, a),
                f"{n} token(s)",
                f"last expires {_time(last_exp[(c, a)])}",
            )
            for (c, a), n in issued.items()
        ]
        or [("none", "", "", "")]
    )

    agent_id = facts.agent.app.app_id if facts.agent else ""
    registrations = system.rows(
        "SELECT worker_identity, issued_at, expires_at, identity_mode FROM agent_registrations"
        " WHERE entra_app_id = :agent ORDER BY issued_at",
        agent=agent_id,
    )
    lines += ["", "LiveKit tokens issued by the platform (from its audit table; never the tokens themselves)"]
    token_rows: list[tuple[str, ...]] = [
        (
            "agent token" if i == 0 else f"renewal {i}",
            r["worker_identity"],
            f"issued {_time(r['issued_at'])}",
            f"expires {_time(r['expires_at'])}",
        )
        for i, r in enumerate(registrations)
    ]
    if facts.participant_token_expires_at is not None:
        token_rows.append(
            (
                "participant token",
                "for the client in the session's room",
                "",
                f"expires {_time(facts.participant_token_expires_at)}",
            )
        )
    lines += _table(token_rows or [("none", "", "", "")])
    lines.append(f"  renewals: {max(len(registrations) - 1, 0)}")
    connections = [c for c in system.livekit.connections if c.claims is not None and c.accepted]
    for c in connections:
        assert c.claims is not None
        lines.append(
            f"  worker connected to LiveKit through the platform's relay at {_time(c.at)} as"
            f" {c.claims.identity} (the relay's LiveKit token, expires {_time(c.claims.expires_at)})"
        )

    if facts.job_id:
        job = system.livekit.job(facts.job_id)
        lines += ["", f"The job ({job.id}, agent_name {job.agent_name})"]
        lines.append("  " + " -> ".join(f"{t.status} {_time(t.at)}" for t in job.history))
        if job.error:
            lines.append(f"  ended with: {job.error}")
        lines.append("  metadata the agent received: " + _metadata(job.metadata))

    if facts.room:
        lines += ["", "The session (its sessions row, written from session/start and LiveKit webhooks)"]
        for row in system.rows("SELECT * FROM sessions WHERE room_name = :room", room=facts.room):
            lines += _lifecycle(row)
        events = system.rows(
            "SELECT event, created_at FROM webhook_events WHERE room_name = :room ORDER BY created_at, event",
            room=facts.room,
        )
        lines.append(
            "  webhooks stored: " + ", ".join(f"{e['event']} {_time(e['created_at'])}" for e in events)
        )

    lines += ["", "Spans received by the OTLP stand-in (service: span x count)"]
    spans = Counter((str(s.resource.get("service.name")), s.name) for s in system.otlp.spans)
    by_service: dict[str, list[str]] = {}
    for (service, name), n in sorted(spans.items()):
        by_service.setdefault(service, []).append(f"{name} x{n}")
    lines += [f"    {service}: {', '.join(items)}" for service, items in by_service.items()] or ["    none"]
    return lines


def _metadata(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), sort_keys=True)
    except ValueError:
        return repr(raw)


def _lifecycle(row: Mapping[str, Any]) -> list[str]:
    stamps = [
        ("requested", "requested_at"),
        ("room created", "room_created_at"),
        ("participant joined", "participant_joined_at"),
        ("agent joined", "agent_joined_at"),
        ("agent left", "agent_left_at"),
        ("participant left", "participant_left_at"),
        ("finished", "finished_at"),
    ]
    lines = [f"  status: {row['status']}"]
    lines.append(
        "  " + ", ".join(f"{label} {_time(row[col])}" for label, col in stamps if row[col] is not None)
    )
    durations = [
        f"{label} {row[col]:.1f} s"
        for label, col in (
            ("session", "session_duration_s"),
            ("participant", "participant_duration_s"),
            ("agent join delay", "agent_join_delay_s"),
        )
        if row[col] is not None
    ]
    if durations:
        lines.append("  durations: " + ", ".join(durations))
    return lines
