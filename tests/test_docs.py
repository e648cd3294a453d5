"""The user guide builds with ``mkdocs build --strict`` and its reference pages name everything the code has.

Template questions come from ``cookiecutter.json``; SDK and service settings from the variables their settings
readers actually look up (read through a recording environment), plus every variable name quoted in those
modules; HTTP paths from ``lkps.api.openapi``. A name added to the code without its docs fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest

import livekit_platform_sdk.settings as sdk_settings
import lkps.settings as service_settings
from livekit_platform_sdk.plugins.catalog import PLUGINS
from lkps.api.openapi import document

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
HOOK_FILE = DOCS / "hooks" / "generated_blocks.py"
_QUOTED_VARIABLE = re.compile(r"""["']((?:LIVEKIT|LKPS|AZURE|OTEL|SSL)_[A-Z0-9_]+)["']""")
_METHODS = ("get", "put", "post", "patch", "delete")


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every variable a settings reader asks for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_read_by(from_env: Callable[[RecordingEnv], object], module: ModuleType) -> set[str]:
    """What ``from_env`` looks up in an empty environment, plus every variable name quoted in ``module``
    (so a variable read only on some branch is still expected in the docs)."""
    env = RecordingEnv()
    with pytest.raises(ValueError, match="not set"):  # an empty environment lacks the required ones
        from_env(env)
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    return env.asked | set(_QUOTED_VARIABLE.findall(source))


def undocumented(names: set[str], page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return sorted(name for name in names if f"`{name}`" not in text)


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generated_blocks", HOOK_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide built once for this module with ``mkdocs build --strict``."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_mkdocs_strict_build_produces_a_page_for_every_markdown_file(site: Path) -> None:
    built = {
        md: site / md.relative_to(DOCS).parent / ("" if md.name == "index.md" else md.stem) / "index.html"
        for md in DOCS.rglob("*.md")
    }
    missing = sorted(str(md.relative_to(DOCS)) for md, html in built.items() if not html.is_file())
    assert len(built) >= 10
    assert not missing, f"pages not built: {missing}"


def test_template_questions_reference_names_every_question() -> None:
    answers = json.loads((REPO / "cookiecutter.json").read_text(encoding="utf-8"))
    questions = {key for key in answers if not key.startswith("_")}
    assert "agent_entra_app_id" in questions  # the file was read, not an empty dict
    missing = undocumented(questions, REFERENCE / "template-questions.md")
    assert not missing, f"template questions missing from docs/reference/template-questions.md: {missing}"


def test_sdk_settings_reference_names_every_variable_the_sdk_reads() -> None:
    variables = variables_read_by(sdk_settings.Settings.from_env, sdk_settings)
    assert {"LIVEKIT_PLATFORM_URL", "AZURE_CLIENT_ID"} <= variables
    missing = undocumented(variables, REFERENCE / "sdk-settings.md")
    assert not missing, f"SDK settings missing from docs/reference/sdk-settings.md: {missing}"


def test_service_settings_reference_names_every_variable_the_service_reads() -> None:
    variables = variables_read_by(service_settings.Settings.from_env, service_settings)
    assert {"LIVEKIT_API_SECRET", "LKPS_DATABASE_URL"} <= variables
    missing = undocumented(variables, REFERENCE / "service-settings.md")
    assert not missing, f"service settings missing from docs/reference/service-settings.md: {missing}"


def test_http_reference_renders_every_openapi_operation(site: Path) -> None:
    html = (site / "reference" / "http-api" / "index.html").read_text(encoding="utf-8")
    spec = document()
    missing = []
    for path, item in spec["paths"].items():
        for method in (m for m in _METHODS if m in item):
            anchor = item[method]["operationId"].lower()
            if path not in html or f'id="{anchor}"' not in html:
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"operations missing from the built HTTP reference: {missing}"
    assert (site / "reference" / "openapi.json").read_text(encoding="utf-8").strip() == json.dumps(
        spec, indent=2
    )


def test_http_reference_lists_every_documented_status_of_each_operation() -> None:
    spec = document()
    markdown = load_hook().render_openapi(spec)
    sections = re.split(r"^### ", markdown, flags=re.MULTILINE)
    for path, item in spec["paths"].items():
        for method in (m for m in _METHODS if m in item):
            heading = f"`{method.upper()} {path}`"
            section = next(s for s in sections if s.startswith(heading))
            for status in item[method]["responses"]:
                assert f"| `{status}` |" in section, f"{heading} lacks status {status}"


def test_http_reference_rejects_a_reference_to_a_missing_schema() -> None:
    from mkdocs.exceptions import PluginError

    spec = document()
    spec["paths"]["/api/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/DoesNotExist"
    }
    with pytest.raises(PluginError, match="DoesNotExist"):
        load_hook().render_openapi(spec)


def test_agent_guide_lists_every_plugin_extra(site: Path) -> None:
    html = (site / "agent-guide" / "index.html").read_text(encoding="utf-8")
    missing = [p.extra for p in PLUGINS if f"livekit_platform_sdk.plugins.{p.module}</code>" not in html]
    assert not missing, f"plugins missing from the built agent guide: {missing}"
