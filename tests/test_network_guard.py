"""The suite-wide guard refuses anything beyond loopback, and loopback still works."""

from __future__ import annotations

import socket
from typing import Any

import pytest


def test_network_guard_refuses_non_loopback_connect(no_remote_network: Any) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ConnectionRefusedError, match="not loopback"):
            sock.connect(("192.0.2.1", 443))  # TEST-NET-1: refused by the guard before any packet is sent
    finally:
        sock.close()
    assert no_remote_network.violations == ["connect ('192.0.2.1', 443)"]
    no_remote_network.violations.clear()


def test_network_guard_refuses_resolving_public_names(no_remote_network: Any) -> None:
    with pytest.raises(socket.gaierror, match="not loopback"):
        socket.getaddrinfo("login.microsoftonline.com", 443)
    assert no_remote_network.violations == ["resolve 'login.microsoftonline.com'"]
    no_remote_network.violations.clear()


def test_network_guard_lets_loopback_through() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
