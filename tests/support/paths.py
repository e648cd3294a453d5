"""Where things are in this repository, for tests that read its files or run its tools."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = REPO / "sdk"
# What `make template-tools` installs: the linters (bin/) and checkov (its own venv).
TOOLS = REPO / ".tools"
TOOLS_BIN = TOOLS / "bin"
