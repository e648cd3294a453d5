"""The command-line tools tests run: the linters `make template-tools` installs in .tools/, and uv.

A missing tool is a setup error the message says how to fix, never a skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.paths import TOOLS, TOOLS_BIN


def tool(name: str) -> str:
    """A linter installed by `make template-tools` (helm, hadolint, actionlint, checkov, ...)."""
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run `make template-tools` (the template and deploy kit tests need it)"
        )
    return str(path)


def checkov_python() -> str:
    """The interpreter of checkov's own venv (its Bicep parser, pycep, comes with it)."""
    path = TOOLS / "checkov-venv" / "bin" / "python"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make template-tools` (pycep comes with checkov)")
    return str(path)


def uv_binary() -> str:
    """The uv the suite runs under: `uv run` exports its own path; a bare `uv` may be a pyenv shim following a
    generated repo's .python-version."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is not installed: run `make sync`")
    return found
