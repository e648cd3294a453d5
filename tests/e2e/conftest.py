"""Whole-system test fixtures; the harness itself lives in ``demo/`` (shared with ``make demo``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def e2e_workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A working directory per test module: logs, databases, projected tokens, job records."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
