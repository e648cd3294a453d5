"""Child processes the harness starts: output captured to a file, stopped by process group, never orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

# Machine configuration a child must not inherit: each child gets exactly the settings it is given.
_MACHINE_PREFIXES = ("LIVEKIT_", "LKPS_", "AZURE_", "OTEL_", "MSI_", "IDENTITY_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without LiveKit, platform, Azure or OpenTelemetry settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_MACHINE_PREFIXES)}


def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    output: Callable[[], str] | None = None,
) -> None:
    """Poll until ``predicate()`` is truthy; ``TimeoutError`` naming ``what`` otherwise (with the tail of
    ``output()``, a process's output, when given)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = f"; output:\n{output()[-4000:]}" if output is not None else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s{tail}")
        time.sleep(interval)


class ManagedProcess:
    """One child in its own session (so its own children stop with it), stdout and stderr in ``log_path``.

    ``start()`` may be called again after ``stop()``: the log is appended to, so restarts keep the history.
    """

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, cwd: Path, log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> ManagedProcess:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (argv built by the harness, no shell)
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait(self, timeout: float) -> int:
        """The exit status; ``TimeoutError`` with the log's tail when it is still running."""
        assert self.process is not None, f"{self.name} was never started"
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.name} did not exit within {timeout:.0f}s; last output:\n{self.output[-3000:]}"
            ) from None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (a graceful drain), then SIGKILL to the whole process group after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        # Children the process left behind (job processes) go with its group.
        self._signal_group(signal.SIGKILL)
        code = self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
