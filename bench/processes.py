"""Child processes the benchmarks start: output to a log file, own process group, stopped by their own id."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from demo.processes import free_port as free_port  # the one copy, shared with the demo and the tests

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# The machine's LiveKit/Azure/OTEL settings must not leak into a benchmarked process.
_FOREIGN_PREFIXES = ("LIVEKIT_", "AZURE_", "OTEL_", "IDENTITY_", "MSI_", "LKPS_")


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(extra)
    return env


class Child:
    """One started process; ``log`` holds its stdout and stderr."""

    def __init__(
        self, name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path, cwd: Path = REPO
    ) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._out = self.log.open("ab")
        self.started_at = time.time()
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and scripts, no shell)
            list(args),
            env=dict(env),
            cwd=cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the group is ours: job processes a worker forks die with it
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful: lkps flushes its audit queue, a worker drains), then SIGKILL the group."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        else:
            # children the leader left behind (a worker's job processes) share its group id
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._out.close()
        return self.process.returncode


def wait_until(
    predicate: Callable[[], object], *, timeout: float, what: str, child: Child | None = None
) -> None:
    """Poll ``predicate`` every 50 ms; fail with the child's log tail if it died or time ran out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if child is not None and not child.alive():
            raise RuntimeError(
                f"{child.name} exited ({child.process.returncode}) before {what}:\n{child.tail()}"
            )
        if time.monotonic() > deadline:
            tail = f":\n{child.tail()}" if child is not None else ""
            raise RuntimeError(f"{what} did not happen within {timeout}s{tail}")
        time.sleep(0.05)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URLs we built)
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def run_checked(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run a short command to completion; raise with its output when it fails."""
    done = subprocess.run(  # noqa: S603 (fixed argument lists, no shell)
        list(args),
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout
