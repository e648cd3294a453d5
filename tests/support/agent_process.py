"""An SDK agent (``tests/sdk/agents/<agent>.py``) as a real ``start`` subprocess, and the environment that
points it at the platform stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from livekit_platform_testing.platform import PlatformStandIn
from tests.support.paths import REPO

AGENTS_DIR = REPO / "tests" / "sdk" / "agents"


def platform_env(platform: PlatformStandIn, **extra: str) -> dict[str, str]:
    return {
        "LIVEKIT_PLATFORM_URL": platform.url,
        "LIVEKIT_PLATFORM_SCOPE": platform.scope,
        "LIVEKIT_PLATFORM_RETRY_INITIAL_DELAY": "0.2",
        "LIVEKIT_PLATFORM_RETRY_MAX_DELAY": "1",
        "LIVEKIT_PLATFORM_READINESS_HOST": "127.0.0.1",
        **extra,
    }


class AgentProcess:
    """``python tests/sdk/agents/<agent>.py start`` as a real subprocess, output captured to files."""

    def __init__(self, agent: str, env: dict[str, str], workdir: Path) -> None:
        self.stdout_path = workdir / f"{agent}.stdout"
        self.stderr_path = workdir / f"{agent}.stderr"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(AGENTS_DIR / f"{agent}.py"), "start"],
            env=env,
            cwd=workdir,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,  # job processes die with the group in close()
        )

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"agent did not exit within {timeout}s; output:\n{self.output[-4000:]}"
            ) from None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (drain) and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._stdout.close()
        self._stderr.close()
