"""The user guide builds with ``mkdocs build --strict`` and its reference pages name everything the code has.

Template questions come from ``cookiecutter.json``; the settings tables are rendered from the settings classes
(SDK, service, the generated repo's ``AgentConfig``) and must list exactly the variables those classes look up
(read through a recording environment); HTTP paths from ``lkps.api.openapi``. A name added to the code without
its docs fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from livekit_platform_sdk.plugins.catalog import PLUGINS
from lkps.api.openapi import document

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
HOOK_FILE = DOCS / "hooks" / "generated_blocks.py"
_QUOTED_VARIABLE = re.compile(r"""["']((?:LIVEKIT|LKPS|AZURE|OTEL|SSL|AGENT)_[A-Z0-9_]*[A-Z0-9])["']""")
_METHODS = ("get", "put", "post", "patch", "delete")


# Where each settings class's tables are, and the module that declares it.
SETTINGS_PAGES = {
    "sdk": (REFERENCE / "sdk-settings.md", REPO / "sdk" / "src" / "livekit_platform_sdk" / "settings.py"),
    "service": (REFERENCE / "service-settings.md", REPO / "service" / "src" / "lkps" / "settings.py"),
    "agent": (
        REFERENCE / "sdk-settings.md",
        REPO / "{{cookiecutter.agent_slug}}" / "src" / "{{cookiecutter.package_name}}" / "config.py",
    ),
}


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every variable a settings reader asks for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_read_by(settings_class: Any) -> list[str]:
    """What ``from_env`` looks up in an empty environment (which fails only when some are required)."""
    env = RecordingEnv()
    if any(field.is_required() for field in settings_class.model_fields.values()):
        with pytest.raises(ValueError, match="is not set"):
            settings_class.from_env(env)
    else:
        settings_class.from_env(env)
    return env.asked


def documented_settings(key: str) -> list[str]:
    """The variables in the settings tables the reference page renders for ``key``, in page order."""
    hook = load_hook()
    page, _ = SETTINGS_PAGES[key]
    names = []
    for marker in hook.SETTINGS_MARKER.finditer(page.read_text(encoding="utf-8")):
        if marker[1] == key:
            names += [name for name, _, _ in hook.settings_rows(hook.settings_class(key), marker[2])]
    return names


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


@pytest.mark.parametrize("key", SETTINGS_PAGES)
def test_settings_reference_lists_exactly_the_variables_the_settings_read(key: str) -> None:
    read = variables_read_by(load_hook().settings_class(key))
    documented = documented_settings(key)
    assert len(read) >= 4  # the class was found and read
    assert sorted(documented) == sorted(read), f"{key}: documented {documented}, read {read}"
    assert len(set(documented)) == len(documented), f"{key}: a variable is documented twice"


@pytest.mark.parametrize("key", SETTINGS_PAGES)
def test_every_variable_named_in_a_settings_module_is_on_its_page(key: str, site: Path) -> None:
    page, module = SETTINGS_PAGES[key]
    html = (site / "reference" / page.stem / "index.html").read_text(encoding="utf-8")
    quoted = set(_QUOTED_VARIABLE.findall(module.read_text(encoding="utf-8")))
    assert quoted, f"{module} names no variable"
    missing = sorted(name for name in quoted if f"<code>{name}</code>" not in html)
    assert not missing, f"variables named in {module.name} missing from the built {page.name}: {missing}"


def test_a_settings_marker_for_a_group_without_variables_fails_the_build() -> None:
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="no variable in group 'Nonexistent'"):
        load_hook().render_settings("service", "Nonexistent")


def test_the_settings_error_examples_are_what_the_settings_raise() -> None:
    hook = load_hook()
    service = hook.render_settings_error("service")
    assert service.startswith("```text\nlkps: the platform service is not configured correctly:\n  - ")
    assert "LIVEKIT_API_SECRET is shorter than 32 bytes" in service
    assert "too-short" not in service
    assert "LIVEKIT_PLATFORM_URL is not set" in hook.render_settings_error("sdk")


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
