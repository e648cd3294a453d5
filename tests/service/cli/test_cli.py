"""The ``lkps`` command as a process: settings errors, ``migrate``, ``dev`` and ``serve`` with JSON logs."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.speedups import SPEEDUPS
from tests.support.serve_process import clean_env, lkps_serve
from tests.support.service import API_SECRET, gateway_headers, new_agent_id, service_env


def lkps(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lkps", *args], env=clean_env(env), capture_output=True, text=True, timeout=60
    )


GATEWAY_SECRET = "cli-gateway-secret-" + "g" * 32


@pytest.fixture
def running(
    tmp_path: Path, livekit_standin: LiveKitStandIn, speedups: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``lkps serve`` on a loopback port with a fresh SQLite file (migrated on start); yields its URL,
    process and log file."""
    log = tmp_path / "lkps.log"
    database = f"sqlite:///{tmp_path / 'dev.db'}"
    env = service_env(
        livekit_standin.ws_url,
        database,
        LKPS_LOG_FORMAT="json",
        LKPS_SPEEDUPS=speedups,
        LKPS_GATEWAY_SHARED_SECRET=GATEWAY_SECRET,
        LKPS_MIGRATE_ON_START="true",
    )
    with lkps_serve(env, log) as (url, process):
        yield url, process, log


def test_missing_settings_exit_2_naming_each_variable() -> None:
    result = lkps("serve", env={"LKPS_IDENTITY_MODE": "gateway", "LIVEKIT_URL": "wss://lk.example.com"})
    assert result.returncode == 2
    assert "LIVEKIT_API_KEY is not set" in result.stderr
    assert "LIVEKIT_API_SECRET is not set" in result.stderr


def test_a_misspelt_setting_is_one_json_warning_naming_the_variable_meant(tmp_path: Path) -> None:
    env = service_env("wss://lk.example.com", f"sqlite:///{tmp_path / 'lkps.db'}", LKPS_AUDIT_BATCH_SIZ="10")
    result = lkps("migrate", env=env)
    assert result.returncode == 0, result.stderr
    warnings = [r for r in map(json.loads, result.stderr.splitlines()) if r["level"] == "warning"]
    assert [r["msg"] for r in warnings] == [
        "LKPS_AUDIT_BATCH_SIZ is set but is not a setting of the platform service and is ignored:"
        " did you mean LKPS_AUDIT_BATCH_SIZE?"
    ]


def test_migrate_creates_the_schema_in_a_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "lkps.db"
    env = service_env("wss://lk.example.com", f"sqlite:///{database}")
    result = lkps("migrate", env=env)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"agents", "agent_registrations", "sessions", "webhook_events"} <= names


def test_serve_answers_logs_json_without_tokens_and_stops_on_sigterm(
    running: tuple[str, subprocess.Popen[bytes], Path], speedups: str
) -> None:
    url, process, log = running
    response = httpx.post(
        f"{url}/api/agent/register",
        json={},
        headers={**gateway_headers(client_id=new_agent_id()), "x-gateway-secret": GATEWAY_SECRET},
    )
    assert response.status_code == 200
    token = response.json()["livekit_token"]

    process.send_signal(signal.SIGTERM)
    # uvicorn finishes the shutdown, then re-raises the signal so the exit status reports it.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(r["msg"] == "agent registered" for r in records)
    # The operator sees which speedups run.
    on = sorted(SPEEDUPS) if speedups == "on" else []
    assert any(r["msg"] == "lkps started" and r["speedups"] == on for r in records)
    assert any(r["msg"] == "lkps stopped" and r["audit_written"] == 1 for r in records)
    assert records[-1]["msg"].startswith("Finished server process")
    text = log.read_text()
    assert token not in text
    assert token.split(".")[2] not in text
    assert API_SECRET not in text
    assert GATEWAY_SECRET not in text


def test_python_dash_m_and_the_module_entry_point_agree() -> None:
    result = lkps("--version", env={})
    assert result.returncode == 0
    assert result.stdout.startswith("lkps ")
