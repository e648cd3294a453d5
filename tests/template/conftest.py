"""Template test fixtures: the baker and the matrix bakes, made once per session (tests/support/baking.py)."""

from __future__ import annotations

import pytest

from tests.support.baking import Baked, Baker
from tests.support.template_matrix import MATRIX, Combo, combo_id


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
