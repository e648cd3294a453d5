"""Run wrk with one of the Lua scripts in bench/lua and read the JSON summary line they print."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
_MARK = "BENCH_RESULT "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    non_2xx: int
    socket_errors: int
    wrapped: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


def threads_for(connections: int) -> int:
    return max(1, min(connections, len(os.sched_getaffinity(0))))


def whole_seconds(duration: float) -> int:
    """wrk takes whole seconds only."""
    return max(1, round(duration))


def command(url: str, script: str, connections: int, duration: float) -> list[str]:
    """The wrk arguments; the script's inputs travel in the environment (see ``display``)."""
    return [
        "wrk",
        f"-t{threads_for(connections)}",
        f"-c{connections}",
        f"-d{whole_seconds(duration)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]


def display(url: str, script: str, connections: int, duration: float, env: Mapping[str, str]) -> str:
    """The command line as the report shows it (paths relative to the repository, ports as they were)."""
    parts = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    args = command(url, script, connections, duration)
    args[-2] = f"bench/lua/{script}"
    return " ".join(parts + args)


def run(url: str, script: str, connections: int, duration: float, env: Mapping[str, str]) -> WrkResult:
    full_env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_THREADS": str(threads_for(connections)),
        **env,
    }
    done = subprocess.run(  # noqa: S603 (wrk with arguments we built)
        command(url, script, connections, duration),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk against {url} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    data = json.loads(line[len(_MARK) :])
    errors = data["errors"]
    latency = data["latency_us"]
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        non_2xx=int(errors["status"]),
        socket_errors=int(errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]),
        wrapped=int(data["wrapped"]),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
    )
