"""Fixtures for every test folder: a real PostgreSQL cluster, and a guard that keeps all traffic on loopback.

The guard wraps the ``socket`` module (not a client library), so it sees every client and every thread: an
azure-identity call that would fall back to the real cloud (instance discovery, IMDS) is
refused before a packet leaves, and the test that caused it fails even if the client swallowed the error.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import PostgresCluster

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class NetworkGuard:
    """Records refused destinations; a test that expects a refusal clears ``violations`` once checked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.violations: list[str] = []

    def refuse(self, destination: str) -> None:
        with self._lock:
            self.violations.append(destination)


def _is_loopback_host(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) resolves to the local host
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


# Markers by what a test needs (registered in pyproject.toml): by the fixtures it uses, anywhere in the suite,
# and by its folder. `make test-fast` runs the tests that have none of them.
_FIXTURE_MARKERS = {
    "postgres": "postgres",  # the session's cluster, directly or through db_url, pg_url, ...
    "start_agent": "worker",  # tests/sdk: an SDK agent as a `start` subprocess
    "rig": "worker",  # tests/testing/test_livekit_standin.py: a plain livekit-agents worker subprocess
    "checkov_reports": "slow",  # tests/service/deploy: one checkov run (tens of seconds to start)
    "validation": "slow",  # tests/service/deploy: kubernetes-validate over every rendering of the chart
    "site": "slow",  # tests/test_docs.py: `mkdocs build --strict`
}
# By folder (a path under tests/ that starts with the key).
_FOLDER_MARKERS = {
    "e2e/": ("worker", "postgres"),
    "template/": ("template",),
    "image/": ("worker", "template"),
    "service/cli/": ("slow",),  # the `lkps` command as a process: a second or more per call
}
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = {marker for fixture, marker in _FIXTURE_MARKERS.items() if fixture in item.fixturenames}
        path = item.path.relative_to(_TESTS).as_posix() if item.path.is_relative_to(_TESTS) else ""
        for folder, markers in _FOLDER_MARKERS.items():
            if path.startswith(folder):
                names.update(markers)
        for name in sorted(names):
            item.add_marker(name)


@pytest.fixture(autouse=True)
def no_remote_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_host(address[0]):
            guard.refuse(f"connect {address!r}")
            raise ConnectionRefusedError(f"test network guard: connecting to {address!r} is not loopback")

    def connect(sock: socket.socket, address: Any) -> None:
        _check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        _check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback_host(host):
            guard.refuse(f"resolve {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"test network guard: {host!r} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    if guard.violations:
        pytest.fail(f"the test tried to reach non-loopback addresses: {guard.violations}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL 15 cluster for the whole session (see ``support/postgres.py``)."""
    cluster = PostgresCluster()
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
