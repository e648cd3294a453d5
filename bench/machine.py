"""What machine a result came from: cores, CPU model, memory, Python, kernel, load, tool versions."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _version(args: list[str]) -> str:
    if shutil.which(args[0]) is None and not Path(args[0]).exists():
        return "not installed"
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 (fixed tool probes)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "unknown"


PROBE_OPS = 50_000


def cpu_probe() -> float:
    """µs per operation of a fixed pure-Python workload (a JSON round trip of a small dict, the kind of work
    the service does), averaged over about half a second. This machine's speed flips between two states, one
    about twice as slow as the other, within seconds (a shared host), which load averages do not show; this
    number does, so each result can be read against the state of the machine it ran on."""
    started = time.perf_counter()
    for i in range(PROBE_OPS):
        json.loads(json.dumps({"id": i, "room": f"room-{i}", "tags": [1, 2, 3], "ok": True}))
    return (time.perf_counter() - started) / PROBE_OPS * 1e6


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


@dataclass
class Machine:
    """Captured when a section starts; ``load_after`` is filled when it ends (noise shows there)."""

    nproc: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    cpu: str = field(default_factory=_cpu_model)
    memory_gib: float = field(default_factory=_memory_gib)
    python: str = field(default_factory=platform.python_version)
    kernel: str = field(default_factory=platform.release)
    started: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    )
    load_before: str = field(default_factory=load_average)
    load_after: str = ""
    tools: dict[str, str] = field(default_factory=dict)
    # cpu_probe() results: the first when the section starts, the last when it ends, any others in between.
    probes: list[float] = field(default_factory=lambda: [cpu_probe()])

    def probe(self) -> None:
        self.probes.append(cpu_probe())

    def finish(self) -> None:
        self.load_after = load_average()
        self.probe()

    def add_tool(self, name: str, args: list[str]) -> None:
        self.tools[name] = _version(args)

    def markdown(self) -> str:
        lines = [
            f"- Date: {self.started}",
            f"- Machine: {self.nproc} CPUs (`nproc`), {self.cpu}, {self.memory_gib:.1f} GiB RAM,"
            f" Linux {self.kernel}, Python {self.python}",
            f"- Load average (1/5/15 min) before: {self.load_before}; after: {self.load_after or 'n/a'}",
            f"- CPU probe ({PROBE_OPS:,} JSON round trips in Python, mean µs each; lower is faster):"
            f" {self._probe_text()}",
        ]
        lines += [f"- {name}: {version}" for name, version in self.tools.items()]
        return "\n".join(lines)

    def _probe_text(self) -> str:
        first, *rest = self.probes
        text = f"{first:.1f} before"
        if len(rest) > 1:
            text += f"; {min(rest[:-1]):.1f}-{max(rest[:-1]):.1f} between runs"
        if rest:
            text += f"; {rest[-1]:.1f} after"
        return text
