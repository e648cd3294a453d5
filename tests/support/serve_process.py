"""``lkps serve`` as a process: started on a loopback port with a clean environment (only the settings given,
none of the caller's ``LKPS_``, ``LIVEKIT_`` or ``OTEL_`` variables), its output in a log file, and waited for
until ``GET /api/health`` answers 200."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from demo.processes import free_port


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the service's variables, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LKPS_", "LIVEKIT_", "OTEL_"))}
    env.update(extra)
    return env


@contextlib.contextmanager
def lkps_serve(
    env: Mapping[str, str], log: Path, *, timeout: float = 30
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``lkps serve`` with ``env`` (stdout and stderr to ``log``), healthy: its URL and process. Killed on
    exit if it still runs; ``AssertionError`` with the log if it exits or is not healthy within
    ``timeout``."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "lkps", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"lkps did not become healthy:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
