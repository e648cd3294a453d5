"""The pytest plugin, as a project that installs livekit-platform-testing meets it: loaded by its entry point,
free to load, and its fixtures configured per folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

PLUGIN = "livekit_platform_testing.pytest_plugin"

CONFTEST = """
import pytest


@pytest.fixture(scope="session")
def livekit_standin_options():
    return {{"api_key": "{api_key}", "api_secret": "s" * 40}}


@pytest.fixture(scope="session")
def tenant_options():
    return {{"platform_app_id": "{platform_app_id}"}}
"""

TESTS = """
import json
import os

import httpx
from livekit import api
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def record(name, entra_standin, platform_standin):
    with open(os.environ["PLUGIN_TEST_RECORD"], "a") as out:
        out.write(json.dumps([__name__, name, id(entra_standin), id(platform_standin)]) + "\\n")


def test_an_agent_registers_through_the_platform_standin(
    entra_standin, livekit_standin, platform_standin, tenant
):
    record("register", entra_standin, platform_standin)
    agent = tenant.add_agent("agent")
    bearer = {{"Authorization": f"Bearer {{tenant.token(agent)}}"}}
    response = httpx.post(f"{{platform_standin.url}}/api/agent/register", json={{}}, headers=bearer)
    assert response.status_code == 200, response.text
    claims = api.TokenVerifier(livekit_standin.api_key, livekit_standin.api_secret).verify(
        response.json()["livekit_token"]
    )
    assert claims.identity == f"agent-{{agent.app_id}}"
    assert (livekit_standin.api_key, tenant.platform.app_id) == ("{api_key}", "{platform_app_id}")
    assert tenant.entra is entra_standin
    assert platform_standin.scope == tenant.scope


def test_the_collector_takes_an_export(entra_standin, platform_standin, otlp_collector):
    record("export", entra_standin, platform_standin)
    response = httpx.post(
        otlp_collector.traces_url,
        content=ExportTraceServiceRequest().SerializeToString(),
        headers={{"Content-Type": "application/x-protobuf"}},
    )
    assert response.status_code == 200
    assert len(otlp_collector.exports) == 1
"""


def test_the_plugin_is_registered_for_pytest_by_its_entry_point() -> None:
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}

    assert plugins.get("livekit_platform_testing") == PLUGIN


def test_loading_the_plugin_imports_no_stand_in_and_no_client_library() -> None:
    probe = (
        f"import sys, json, {PLUGIN}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'aiohttp', 'livekit', 'azure', 'jwt', 'cryptography', 'google', 'opentelemetry'}"
        " or m.startswith('livekit_platform_testing.'))))"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True))

    assert loaded == [PLUGIN]


def _folder(root: Path, name: str, *, api_key: str, platform_app_id: str) -> None:
    folder = root / name
    folder.mkdir()
    (folder / "conftest.py").write_text(
        textwrap.dedent(CONFTEST.format(api_key=api_key, platform_app_id=platform_app_id))
    )
    (folder / f"test_{name}_plugin_fixtures.py").write_text(
        textwrap.dedent(TESTS.format(api_key=api_key, platform_app_id=platform_app_id))
    )


@pytest.mark.slow  # a whole pytest run in a fresh interpreter
def test_fixtures_start_the_stand_ins_once_per_module_with_each_folders_options(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    _folder(
        project, "first", api_key="APIfirstfolder", platform_app_id="0f1e2d3c-4b5a-4697-8d8e-9f0a1b2c3d4e"
    )
    _folder(
        project, "second", api_key="APIsecondfolder", platform_app_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    )
    records = tmp_path / "records.jsonl"

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env={**_clean_env(), "PLUGIN_TEST_RECORD": str(records)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout
    seen = [json.loads(line) for line in records.read_text().splitlines()]
    entra_by_module = {module: {entra for m, _, entra, _ in seen if m == module} for module, *_ in seen}
    assert all(len(ids) == 1 for ids in entra_by_module.values()), "one Entra stand-in per module"
    assert len({entra for _, _, entra, _ in seen}) == 2, "a new one for the next module"
    assert len({platform for *_, platform in seen}) == 4, "a platform stand-in per test"


def _clean_env() -> dict[str, str]:
    prefixes = ("LIVEKIT_", "AZURE_", "OTEL_", "PYTEST_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
