"""What the platform stand-in saw: one record per register call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["up", "unavailable", "refuse"]


@dataclass(frozen=True)
class Registration:
    """One register call as the stand-in saw it (a fingerprint of the minted token, never the token)."""

    app_id: str | None
    status: int
    enforce_client_authz: bool | None
    fingerprint: str | None
    mode: Mode
