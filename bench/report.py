"""docs/benchmarks.md: a fixed introduction, then one section per benchmark between markers, so running a
subset (``make bench BENCH=sdk``) replaces only that section and keeps the others' last results.
"""

from __future__ import annotations

import re
from pathlib import Path

SECTIONS = ("service", "sdk", "template", "scale", "images")

INTRO = """# Benchmarks

Written by `make bench` (`bench/run.py`); do not edit by hand between the markers. `make bench BENCH=service`
(or `sdk`, `template`, or a comma-separated list) re-runs one part and replaces only its section.

Rules these numbers follow: they come from `make bench`, never from the test suite (no test asserts a timing);
every figure is the median of several runs, shown next to each run's value; every ratio compares two things
measured in the same run on the same machine against the same stand-ins; each section names the machine, its
load average and a CPU probe before and after, and the commands that produced it. Targets come from the issues
and are reported, not enforced. Everything runs on 127.0.0.1. The service's figures are with its speedups on
(the default); its plain path (`LKPS_SPEEDUPS=off`) is measured beside them in the same run, and
`make bench BENCH=service BENCH_ARGS="--speedups each"` adds what each speedup buys. See `bench/README.md` for
what each benchmark does.
"""


def _marker(name: str, edge: str) -> str:
    return f"<!-- bench:{name}:{edge} -->"


def _placeholder(name: str) -> str:
    return f"## {name}\n\nNot measured yet: run `make bench BENCH={name}`."


def update(path: Path, sections: dict[str, str]) -> None:
    """Replace the given sections in ``path`` (creating it with placeholders for the others)."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    blocks: dict[str, str] = {}
    for name in SECTIONS:
        found = re.search(
            re.escape(_marker(name, "start")) + r"\n(.*?)\n" + re.escape(_marker(name, "end")), existing, re.S
        )
        blocks[name] = found.group(1) if found else _placeholder(name)
    blocks.update(sections)
    parts = [INTRO]
    for name in SECTIONS:
        parts.append(f"{_marker(name, 'start')}\n{blocks[name].strip()}\n{_marker(name, 'end')}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
