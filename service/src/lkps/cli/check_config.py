"""``lkps check-config``: the settings validated as ``serve`` would read them, and printed redacted."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..settings import Settings
from ..speedups import spelled


def report(settings: Settings, warnings: list[str], as_json: bool) -> str:
    """Each variable and its value as the service understood it (secrets as ``<set>``/``<unset>``, the
    database password as ``***``), then any warnings."""
    values = _by_variable(settings.redacted())
    if as_json:
        return json.dumps({"valid": True, "settings": values, "warnings": warnings}, indent=2)
    width = max(len(name) for name in values)
    lines = ["the platform service's settings are valid:"]
    lines += [f"  {name.ljust(width)}  {_text(value)}" for name, value in values.items()]
    lines += [f"warning: {warning}" for warning in warnings]
    return "\n".join(lines)


def _by_variable(redacted: Mapping[str, object]) -> dict[str, object]:
    variables = Settings.variables()
    out: dict[str, object] = {}
    for field, value in redacted.items():
        if isinstance(value, frozenset):  # the speedups
            value = spelled(value)
        elif isinstance(value, tuple):
            value = ",".join(map(str, value))
        out[variables[field]] = value
    return out


def _text(value: object) -> str:
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
