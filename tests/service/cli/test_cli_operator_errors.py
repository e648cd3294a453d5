"""``lkps`` as an operator meets it: start-up failures are a few lines naming the variable, the problem and
the fix, exit status 2, no traceback; ``migrate`` needs only the database settings (the chart's migration Job
gives it nothing else); ``--help`` lists the variables each command reads; ``check-config`` and ``migrate
--sql``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from lkps.settings import DatabaseSettings, Settings
from tests.support.edge import GATEWAY_SECRET
from tests.support.postgres import PostgresCluster
from tests.support.service import API_SECRET, free_port, service_env

PASSWORD = "pw-" + uuid.uuid4().hex


def lkps(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LKPS_", "LIVEKIT_", "OTEL_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "lkps", *args], env=clean, capture_output=True, text=True, timeout=90
    )


def assert_operator_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, a few lines on stderr naming each fragment, no traceback, never the password."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert PASSWORD not in output
    assert API_SECRET not in output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # JSON log lines aside
    assert 1 <= len(lines) <= 4, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def with_password(url: str, *, user: str = "postgres", database: str | None = None) -> str:
    """``url`` (the cluster's) as a plain postgresql:// URL with ``user``, a password and ``database``."""
    rest = url.split("@", 1)[1]
    host, name = rest.split("/", 1)
    return f"postgresql://{user}:{PASSWORD}@{host}/{database or name}"


def test_migrate_needs_only_the_database_url(postgres: PostgresCluster) -> None:
    url = postgres.create_database(f"cli_{uuid.uuid4().hex[:8]}")

    result = lkps("migrate", env={"LKPS_DATABASE_URL": url})

    assert result.returncode == 0, result.stderr
    tables = postgres.psql(
        "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'", url.rsplit("/", 1)[1]
    )
    assert {"agents", "sessions", "agent_registrations", "webhook_events"} <= set(tables.split(","))


def test_an_unreachable_database_is_one_line_naming_the_variable_and_the_fix() -> None:
    url = f"postgresql://lkps:{PASSWORD}@127.0.0.1:{free_port()}/lkps"
    result = lkps("migrate", env={"LKPS_DATABASE_URL": url})
    assert_operator_error(result, "LKPS_DATABASE_URL", "connection refused", "start PostgreSQL", "lkps:***@")


def test_a_refused_user_and_a_missing_database_say_which(pg_url: str) -> None:
    refused = lkps("migrate", env={"LKPS_DATABASE_URL": with_password(pg_url, user="nobody")})
    assert_operator_error(refused, "LKPS_DATABASE_URL", "refused user 'nobody'")
    missing = lkps("migrate", env={"LKPS_DATABASE_URL": with_password(pg_url, database="no_such_db")})
    assert_operator_error(missing, "LKPS_DATABASE_URL", "database 'no_such_db' does not exist", "createdb")


def test_an_unwritable_sqlite_path_and_a_bad_url_name_the_variable(tmp_path: Path) -> None:
    nowhere = lkps("migrate", env={"LKPS_DATABASE_URL": f"sqlite:///{tmp_path}/missing/folder/lkps.db"})
    assert_operator_error(nowhere, "LKPS_DATABASE_URL", "cannot open or create the SQLite file", "folder")
    bad_port = lkps("migrate", env={"LKPS_DATABASE_URL": f"postgresql://lkps:{PASSWORD}@db:notaport/lkps"})
    assert_operator_error(bad_port, "LKPS_DATABASE_URL", "not a valid database URL")
    scheme = lkps("agents", env={"LKPS_DATABASE_URL": f"mysql://lkps:{PASSWORD}@db/lkps"})
    assert_operator_error(scheme, "LKPS_DATABASE_URL", "use postgresql://")


def _serve_env(livekit_url: str, database_url: str, **overrides: str) -> dict[str, str]:
    """What ``lkps serve`` needs in gateway mode besides the service's settings: the gateway's secret."""
    return service_env(livekit_url, database_url, LKPS_GATEWAY_SHARED_SECRET=GATEWAY_SECRET, **overrides)


def test_serve_refuses_an_unmigrated_or_unreachable_database(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    empty = postgres.create_database(f"cli_{uuid.uuid4().hex[:8]}")
    port = str(free_port())
    unmigrated = lkps(
        "serve", "--host", "127.0.0.1", "--port", port, env=_serve_env("ws://127.0.0.1:7880", empty)
    )
    assert_operator_error(unmigrated, "LKPS_DATABASE_URL", "has no schema", "run lkps migrate")
    down = _serve_env("ws://127.0.0.1:7880", f"postgresql://lkps:{PASSWORD}@127.0.0.1:{free_port()}/lkps")
    unreachable = lkps("serve", "--host", "127.0.0.1", "--port", port, env=down)
    assert_operator_error(unreachable, "LKPS_DATABASE_URL", "connection refused")


def test_serve_names_a_port_in_use(tmp_path: Path) -> None:
    env = _serve_env("ws://127.0.0.1:7880", f"sqlite:///{tmp_path / 'lkps.db'}", LKPS_MIGRATE_ON_START="true")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        service = lkps("serve", "--host", "127.0.0.1", "--port", busy, env=env)
        metrics = lkps(
            "serve", "--host", "127.0.0.1", "--port", str(free_port()), env={**env, "LKPS_METRICS_PORT": busy}
        )
    assert_operator_error(service, "--port", "is in use on 127.0.0.1")
    assert_operator_error(metrics, f"LKPS_METRICS_PORT={busy}", "is in use")


@pytest.mark.parametrize(
    ("command", "cls"),
    [
        ("serve", Settings),
        ("dev", Settings),
        ("check-config", Settings),
        ("migrate", DatabaseSettings),
        ("agents", DatabaseSettings),
        ("sessions", DatabaseSettings),
    ],
)
def test_each_commands_help_lists_the_variables_it_reads(command: str, cls: type[DatabaseSettings]) -> None:
    result = lkps(command, "--help", env={})
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert all(variable in text for variable in cls.variables().values())
    if cls is DatabaseSettings:
        assert "LIVEKIT_API_SECRET" not in text


def test_check_config_prints_the_settings_redacted_and_refuses_bad_ones(tmp_path: Path) -> None:
    database = f"postgresql://lkps:{PASSWORD}@db.example.com:5432/lkps"
    env = service_env("wss://lk.example.com", database, LKPS_METRICS_PORT="9100", LKPS_AUDIT_BATCH_SIZ="1")
    text = lkps("check-config", env=env)
    assert text.returncode == 0, text.stderr
    assert PASSWORD not in text.stdout
    assert API_SECRET not in text.stdout
    lines = {
        line.split()[0]: line.split(None, 1)[1]
        for line in text.stdout.splitlines()[1:]
        if line.startswith("  ")
    }
    assert lines["LIVEKIT_API_SECRET"] == "<set>"
    assert lines["LKPS_DATABASE_URL"] == "postgresql+asyncpg://lkps:***@db.example.com:5432/lkps"
    assert lines["LKPS_METRICS_PORT"] == "9100"
    assert lines["LKPS_SPEEDUPS"] == "on"
    assert "warning: LKPS_AUDIT_BATCH_SIZ is set but is not a setting" in text.stdout

    as_json = json.loads(lkps("check-config", "--json", env=env).stdout)
    assert as_json["valid"] is True
    assert as_json["settings"]["LKPS_GRAPH_CLIENT_SECRET"] == "<unset>"
    assert as_json["settings"]["LKPS_METRICS"] is True

    bad = lkps("check-config", env={**env, "LKPS_METRICS_PORT": "99999", "LIVEKIT_API_SECRET": "short"})
    assert bad.returncode == 2
    assert "LKPS_METRICS_PORT='99999' is out of range" in bad.stderr
    assert "LIVEKIT_API_SECRET is shorter than 32 bytes" in bad.stderr
    assert "short" not in bad.stderr.replace("shorter", "")


def test_migrate_sql_prints_the_ddl_without_connecting(tmp_path: Path) -> None:
    nowhere = f"postgresql://lkps:{PASSWORD}@127.0.0.1:{free_port()}/lkps"
    result = lkps("migrate", "--sql", env={"LKPS_DATABASE_URL": nowhere})
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE agents" in result.stdout
    assert "ALTER TABLE agent_jobs RENAME TO sessions" in result.stdout
    assert result.stdout.rstrip().endswith("COMMIT;")
    since = lkps("migrate", "--sql", "--from", "0002", env={"LKPS_DATABASE_URL": nowhere})
    assert since.returncode == 0, since.stderr
    assert "CREATE TABLE agents" not in since.stdout
    assert "RENAME TO sessions" in since.stdout
    sqlite = lkps("migrate", "--sql", env={"LKPS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert_operator_error(sqlite, "LKPS_DATABASE_URL is a SQLite URL", "postgresql://")
    unknown = lkps("migrate", "--sql", "--from", "9999", env={"LKPS_DATABASE_URL": nowhere})
    assert_operator_error(unknown, "--from '9999'")
