"""The Docker command line pointed at the test engine (its own socket, the classic builder)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


class DockerError(AssertionError):
    """A docker command failed; the message holds the command and the tail of its output."""


@dataclass(frozen=True)
class Docker:
    host: str
    """DOCKER_HOST of the engine, e.g. unix:///var/cache/.../docker.sock."""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = shutil.which("docker")
        if binary is None:
            raise DockerError(
                "the docker command is not on PATH: run `make test-image` (it installs docker.io)"
            )
        result = subprocess.run(
            [binary, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise DockerError(
                f"`docker {' '.join(args[:3])} ...` exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def output(self, *args: str, timeout: float = 120) -> str:
        return self.run(*args, timeout=timeout).stdout.strip()
