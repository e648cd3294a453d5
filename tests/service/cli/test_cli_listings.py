"""``lkps agents`` and ``lkps sessions``: the admin views read from the database, as tables or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.settings import Settings
from tests.support.service import new_agent_id, running_app, service_env


def lkps(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LKPS_", "LIVEKIT_", "OTEL_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "lkps", *args], env=clean, capture_output=True, text=True, timeout=90
    )


async def test_agents_and_sessions_list_what_the_service_recorded(
    livekit_standin: LiveKitStandIn, db_url: str
) -> None:
    settings = Settings.from_env(service_env(livekit_standin.ws_url, db_url))
    first, second = sorted([new_agent_id(), new_agent_id()])
    async with running_app(settings) as app:
        assert (await app.register(first, enforce=False)).status_code == 200
        assert (await app.register(second)).status_code == 200
        room = (await app.start_session(first)).json()["room_name"]
        await app.services.audit.flush()
    env = {"LKPS_DATABASE_URL": db_url}

    table = lkps("agents", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "entra_app_id",
        "state",
        "enforce_client_authz",
        "last_registered_at",
        "token_expires_at",
        "revoked_at",
    ]
    assert [line.split()[:3] for line in lines[2:]] == [
        [first, "registered", "False"],
        [second, "registered", "True"],
    ]
    paged = lkps("agents", "--limit", "1", env=env)
    assert paged.stdout.splitlines()[-1] == "(more: --offset 1)"

    agents = json.loads(lkps("agents", "--json", "--state", "registered", env=env).stdout)
    assert [row["entra_app_id"] for row in agents["agents"]] == [first, second]
    assert agents["next_offset"] is None

    sessions = json.loads(lkps("sessions", "--json", "--agent", first, env=env).stdout)
    assert [row["room_name"] for row in sessions["sessions"]] == [room]
    assert sessions["sessions"][0]["state"] == "requested"
    assert lkps("sessions", "--agent", second, env=env).stdout.strip() == "no sessions"
    assert lkps("sessions", "--state", "active", env=env).stdout.strip() == "no sessions"
    future = lkps("sessions", "--since", "2999-01-01T00:00:00Z", env=env)
    assert future.stdout.strip() == "no sessions"
    bad = lkps("sessions", "--agent", "nope", env=env)
    assert bad.returncode == 2
    assert "is not a GUID" in bad.stderr
