"""Whole-system test fixtures; the harness itself lives in ``demo/`` (shared with ``make demo``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the `demo` package: the harness the demo and these tests share


@pytest.fixture(scope="module")
def e2e_workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A working directory per test module: logs, databases, projected tokens, job records."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
