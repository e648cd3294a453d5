"""Template test fixtures: baking through cookiecutter's API, the matrix bakes, the linters in .tools/bin."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

sys.path.insert(0, str(Path(__file__).parent))

from template_matrix import Combo, combo_id, pairwise

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = REPO / "sdk"
# The identity and URL answers that have no default (the template refuses its documented examples): every bake
# passes them explicitly, as a team must.
REQUIRED_ANSWERS: dict[str, Any] = {
    "owner_contact": "voice-agents@contoso.com",
    "codeowners": "@contoso/voice-agents",
    "entra_tenant_id": "5d3c2b1a-0f9e-4d8c-b7a6-958473625140",
    "agent_entra_app_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "platform_app_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    "platform_url_nonprod": "https://voice-platform.nonprod.contoso.com",
    "platform_url_prod": "https://voice-platform.contoso.com",
    "container_registry": "contosoagents.azurecr.io",
}
# The feed a bake with sdk_source=package names (the answer is required with that source).
PACKAGE_FEED = "https://pkgs.dev.azure.com/contoso/_packaging/voice-agents/pypi/simple/"
TOOLS_BIN = REPO / ".tools" / "bin"
MATRIX = pairwise()
MATRIX_IDS = [combo_id(combo) for combo in MATRIX]


def tool(name: str) -> str:
    """A linter installed by `make template-tools`; a missing one is a setup error, not a skip."""
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make template-tools` (the template tests need it)")
    return str(path)


def uv_binary() -> str:
    # `uv run` exports its own path; a bare `uv` may be a pyenv shim following the generated .python-version
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is not installed: run `make sync`")
    return found


def load_hook(name: str) -> ModuleType:
    """hooks/<name>.py imported as plain Python (unrendered, its Jinja sits in a string and comments)."""
    return load_module(f"template_hook_{name}", REPO / "hooks" / f"{name}.py")


def load_extension() -> ModuleType:
    """agent_template_jinja.py, the template's Jinja extension, under a name of its own."""
    return load_module("template_jinja_extension", REPO / "agent_template_jinja.py")


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Baked:
    path: Path
    answers: dict[str, Any]

    @property
    def chart(self) -> Path:
        return self.path / "charts" / str(self.answers["agent_slug"])


class Baker:
    """Bakes the template into fresh folders with cookiecutter's Python API and no user config."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0
        config = root / "cookiecutter-config.yaml"
        config.write_text(
            f"cookiecutters_dir: {root / 'cookiecutters'}\nreplay_dir: {root / 'replay'}\n", encoding="utf-8"
        )
        self.config_file = config

    def bake(self, **answers: Any) -> Baked:
        self._count += 1
        output = self.root / f"bake-{self._count}"
        if answers.get("sdk_source") == "package":
            answers = {"sdk_index_url": PACKAGE_FEED, **answers}
        project = cookiecutter(
            str(REPO),
            no_input=True,
            extra_context={"_sdk_path": str(SDK_DIR), **REQUIRED_ANSWERS, **answers},
            output_dir=str(output),
            config_file=str(self.config_file),
        )
        path = Path(project)
        return Baked(path, read_answers(path, answers))


def read_answers(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The answers a bake used: the required ones with the overrides, derived ones read back."""
    slug = path.name
    return {
        "agent_slug": slug,
        "package_name": next(p.name for p in (path / "src").iterdir() if p.is_dir()),
        "aks_namespace": slug,
        **REQUIRED_ANSWERS,
        **overrides,
    }


@pytest.fixture(scope="session")
def baker(tmp_path_factory: pytest.TempPathFactory) -> Baker:
    return Baker(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def matrix_bakes(baker: Baker) -> dict[str, Baked]:
    """One bake per pairwise combination, made once for the whole session."""
    bakes = {}
    for index, combo in enumerate(MATRIX):
        # vary the names too, so derived slugs, packages and namespaces are exercised
        names: Combo = {"agent_name": f"Order Status Bot {index}"} if index % 2 else {}
        if index % 3 == 1:
            names["aks_namespace"] = f"voice-agents-{index}"
        bakes[combo_id(combo)] = baker.bake(**combo, **names)
    return bakes
