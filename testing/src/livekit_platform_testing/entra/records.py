"""What the Entra stand-in saw: token requests, issued tokens' claims and Graph calls (never a secret)."""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TokenRequest:
    """One token request. ``endpoint`` is ``token`` (v2.0), ``token_v1`` or ``imds``; ``client_auth`` is
    ``client_secret``, ``client_assertion`` or ``managed_identity``; ``outcome`` is ``issued`` or ``error``
    with ``error`` (OAuth error) and ``error_code`` (the AADSTS number, if any)."""

    time: float
    endpoint: str
    client_id: str | None
    grant_type: str | None
    client_auth: str | None
    scope: str | None
    outcome: str
    error: str | None = None
    error_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GraphRequest:
    """One Microsoft Graph call: the caller's app ID (if its token was valid), status and Graph error code."""

    time: float
    method: str
    path: str
    caller_app_id: str | None
    status: int
    error_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Records:
    """Thread-safe append-only logs; readers get copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token_requests: list[TokenRequest] = []
        self._issued: list[dict[str, Any]] = []
        self._graph: list[GraphRequest] = []

    def add_token_request(self, record: TokenRequest) -> None:
        with self._lock:
            self._token_requests.append(record)

    def add_issued(self, claims: dict[str, Any]) -> None:
        with self._lock:
            self._issued.append(copy.deepcopy(claims))

    def add_graph_request(self, record: GraphRequest) -> None:
        with self._lock:
            self._graph.append(record)

    def token_requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._token_requests)

    def issued(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._issued)

    def graph_requests(self) -> list[GraphRequest]:
        with self._lock:
            return list(self._graph)

    def clear(self) -> None:
        with self._lock:
            self._token_requests.clear()
            self._issued.clear()
            self._graph.clear()
