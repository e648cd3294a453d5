"""Gateway mode: a request must prove it came through the gateway (its shared secret), carry each identity
header once, and ``lkps serve`` must refuse to run gateway mode without the secret (issue 24, items 1-2)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from lkps.settings import Settings, SettingsError
from tests.support.edge import GATEWAY_SECRET, OPEN_AGENT, gateway_headers, served

ENDPOINTS = ("/api/agent/register", "/api/session/start")


WRONG_SECRETS = {
    "missing": None,
    "empty": "",
    "short": "wrong",
    "one less": GATEWAY_SECRET[:-1],
    "one more": GATEWAY_SECRET + "x",
    "other case": GATEWAY_SECRET.upper(),
}


async def test_a_request_without_the_gateway_secret_is_401(gateway_settings: Settings) -> None:
    agent = str(uuid.uuid4())
    async with served(gateway_settings) as server, httpx.AsyncClient(base_url=server.url) as client:
        for path in ENDPOINTS:
            body = {} if path.endswith("register") else {"agent_entra_app_id": agent}
            for case, secret in WRONG_SECRETS.items():
                response = await client.post(path, json=body, headers=gateway_headers(agent, secret=secret))

                assert response.status_code == 401, (path, case, response.text)
                assert response.json()["error"] == "unauthorized"
                assert response.json()["field"] == "x-gateway-secret"
                assert GATEWAY_SECRET not in response.text


async def test_the_gateway_secret_lets_the_gateway_through(gateway_settings: Settings) -> None:
    agent = str(uuid.uuid4())
    async with served(gateway_settings) as server, httpx.AsyncClient(base_url=server.url) as client:
        registered = await client.post("/api/agent/register", json=OPEN_AGENT, headers=gateway_headers(agent))
        started = await client.post(
            "/api/session/start", json={"agent_entra_app_id": agent}, headers=gateway_headers()
        )

    assert registered.status_code == 200, registered.text
    assert started.status_code == 200, started.text


IDENTITY_HEADERS = {
    "client-id": str(uuid.uuid4()),
    "user-id": str(uuid.uuid4()),
    "x-user-email": "ceo@example.com",
    "user-profile": '{"cwid": "CEO"}',
    "x-user-profile": '{"cwid": "CEO"}',
    "x-gateway-secret": GATEWAY_SECRET,
}


async def test_a_repeated_identity_header_is_400_naming_it(gateway_settings: Settings) -> None:
    agent = str(uuid.uuid4())
    async with served(gateway_settings) as server, httpx.AsyncClient(base_url=server.url) as client:
        for path in ENDPOINTS:
            body = {} if path.endswith("register") else {"agent_entra_app_id": agent}
            for header, value in IDENTITY_HEADERS.items():
                headers = list(gateway_headers(agent).items())
                # the caller's copy first, as a gateway that appends instead of overriding forwards it
                headers.insert(0, (header, value))
                if header not in dict(headers[1:]):
                    headers.append((header, value))
                response = await client.post(path, json=body, headers=headers)

                assert response.status_code == 400, (path, header, response.text)
                assert response.json()["field"] == header
                assert "repeated" in response.json()["detail"]


async def test_only_the_configured_headers_are_read(env: dict[str, str]) -> None:
    """With the e-mail and profile headers switched off (empty), a caller-added one changes nothing."""
    settings = Settings.from_env({**env, "LKPS_GATEWAY_EMAIL_HEADER": "", "LKPS_GATEWAY_PROFILE_HEADERS": ""})
    agent = str(uuid.uuid4())
    spoof = {"x-user-email": "ceo@example.com", "user-profile": '{"cwid": "CEO", "email": "ceo@example.com"}'}
    async with served(settings) as server, httpx.AsyncClient(base_url=server.url) as client:
        await client.post("/api/agent/register", json=OPEN_AGENT, headers=gateway_headers(agent))
        started = await client.post(
            "/api/session/start", json={"agent_entra_app_id": agent}, headers=gateway_headers(**spoof)
        )

    assert started.status_code == 200, started.text
    assert "CEO" not in started.json()["room_name"]
    assert "ceo" not in started.text


def lkps(command: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LKPS_", "LIVEKIT_", "OTEL_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "lkps", command, "--host", "127.0.0.1", "--port", "0"],
        env={**keep, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def gateway_env_without_secret(tmp_path: Path) -> dict[str, str]:
    return {
        "LIVEKIT_URL": "ws://127.0.0.1:7880",
        "LIVEKIT_API_KEY": "APIlkps",
        "LIVEKIT_API_SECRET": "s" * 40,
        "LKPS_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        "LKPS_IDENTITY_MODE": "gateway",
    }


def test_lkps_serve_refuses_gateway_mode_without_the_secret(tmp_path: Path) -> None:
    without = gateway_env_without_secret(tmp_path)
    process = lkps("serve", without, tmp_path)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("lkps serve: LKPS_GATEWAY_SHARED_SECRET is not set")


def test_lkps_dev_runs_gateway_mode_without_the_secret_saying_so_loudly(tmp_path: Path) -> None:
    without = gateway_env_without_secret(tmp_path)
    process = lkps("dev", without, tmp_path)
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "Uvicorn running" in line or "lkps started" in line or len(seen) > 50:
                break
    finally:
        process.terminate()
        process.communicate(timeout=60)

    warnings = [line for line in seen if "GATEWAY MODE WITHOUT LKPS_GATEWAY_SHARED_SECRET" in line]
    assert warnings, "".join(seen)


def test_a_short_gateway_secret_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {**gateway_env_without_secret(tmp_path), "LKPS_GATEWAY_SHARED_SECRET": "short"}
    with pytest.raises(SettingsError, match="LKPS_GATEWAY_SHARED_SECRET is shorter than 32 bytes"):
        Settings.from_env(env)
