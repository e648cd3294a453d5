"""Medians, ratios and their formatting for the report tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN: the measurement is missing
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_runs(values: Sequence[float], digits: int = 0) -> str:
    return " / ".join(fmt(v, digits) for v in values)


def verdict(value: float, target: float, *, at_least: bool) -> str:
    """``yes``/``no`` against a target (reported, never asserted), ``n/a`` when not measured."""
    if value != value:
        return "n/a"
    met = value >= target if at_least else value <= target
    return "yes" if met else "no"


def target_row(label: str, value: float, target: float, *, at_least: bool = True, digits: int = 2) -> str:
    """A ``| label | value | target | met |`` row; targets are reported, never asserted."""
    sign = "≥" if at_least else "≤"
    met = verdict(value, target, at_least=at_least)
    return f"| {label} | {fmt(value, digits)} | {sign} {fmt(target, digits)} | {met} |"
