"""Baking the template with cookiecutter's Python API (no user config), the answers every bake gives, a bake's
chart rendered by the real helm, and the template's hooks and Jinja extension loaded as plain modules."""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from cookiecutter.main import cookiecutter

from tests.support.paths import REPO, SDK_DIR
from tests.support.tools import tool

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


@cache
def helm_template(
    chart: Path, namespace: str, values_file: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool("helm"),
            "template",
            "agent",
            str(chart),
            "--namespace",
            namespace,
            "-f",
            str(chart / "values.yaml"),
            "-f",
            str(chart / values_file),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
