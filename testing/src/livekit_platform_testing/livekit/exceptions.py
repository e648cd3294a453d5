"""What the LiveKit stand-in refuses: a token it does not accept, a room request it cannot carry out."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import TokenClaims


class TokenRejectedError(Exception):
    """A token failed verification; ``claims`` is set when the signature was good (expired, missing grant)."""

    def __init__(self, reason: str, claims: TokenClaims | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claims = claims


class RoomRequestError(Exception):
    """A join/leave/terminate the stand-in refused; ``status`` is the HTTP status the admin route answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
