"""The answer combinations the template tests bake: every pair of choices of every question at least once."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

CHOICES: dict[str, tuple[object, ...]] = {
    "sdk_source": ("git", "package", "vendored"),
    "agent_identity": ("app_registration", "managed_identity"),
    "plugins": ("openai", "openai+deepgram+cartesia", "openai-realtime"),
    "telemetry_exporter": ("otlp", "azure_monitor", "none"),
    "ci_system": ("github", "azure_pipelines", "none"),
    "python_version": ("3.12", "3.13", "3.11"),
    "enforce_client_authz": (True, False),
}

Combo = dict[str, object]


def workable(combo: Mapping[str, object]) -> bool:
    """Combinations the answer checks accept: a managed identity cannot enforce client authorization."""
    return not (
        combo.get("agent_identity") == "managed_identity" and combo.get("enforce_client_authz") is True
    )


def pairs_of(combo: Mapping[str, object]) -> set[tuple[tuple[str, object], tuple[str, object]]]:
    items = sorted(combo.items())
    return set(itertools.combinations(items, 2))


def all_pairs(choices: Mapping[str, Sequence[object]]) -> set[tuple[tuple[str, object], tuple[str, object]]]:
    result = set()
    for (q1, v1s), (q2, v2s) in itertools.combinations(sorted(choices.items()), 2):
        result.update(((q1, v1), (q2, v2)) for v1 in v1s for v2 in v2s if workable({q1: v1, q2: v2}))
    return result


def pairwise(choices: Mapping[str, Sequence[object]] = CHOICES) -> list[Combo]:
    """Greedy all-pairs cover, deterministic: each step takes the combination covering most open pairs."""
    names = list(choices)
    candidates = [
        combo
        for values in itertools.product(*choices.values())
        if workable(combo := dict(zip(names, values, strict=True)))
    ]
    uncovered = all_pairs(choices)
    chosen: list[Combo] = []
    while uncovered:
        best = max(candidates, key=lambda combo: len(pairs_of(combo) & uncovered))
        chosen.append(best)
        uncovered -= pairs_of(best)
    return chosen


def combo_id(combo: Mapping[str, object]) -> str:
    authz = "authz" if combo["enforce_client_authz"] else "no-authz"
    identity = "mi" if combo["agent_identity"] == "managed_identity" else "app"
    return "-".join(
        [
            str(combo["sdk_source"]),
            identity,
            str(combo["plugins"]),
            str(combo["telemetry_exporter"]),
            str(combo["ci_system"]),
            f"py{combo['python_version']}",
            authz,
        ]
    )


# The matrix the template tests bake (conftest's `matrix_bakes`), and its test ids.
MATRIX = pairwise()
MATRIX_IDS = [combo_id(combo) for combo in MATRIX]
