"""Who is calling: the ``Identity`` both identity modes produce, from an Entra bearer token validated here
(:mod:`.entra`) or from the headers a trusted gateway injects (:mod:`.gateway`).

In ``entra`` mode identity headers are never read, so a caller cannot spoof them.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

from starlette.datastructures import Headers

from ..errors import ApiError

Endpoint = Literal["register", "session", "admin"]


class Identity(NamedTuple):
    """The caller, as far as the service needs it."""

    client_id: str | None  # the calling application's Entra app (client) ID
    user_id: str | None  # the Entra object ID of the user or service principal
    email: str | None
    display_name: str | None
    cwid: str | None
    # A user's token (Entra ``scp``: delegated scopes), obtained through a client app such as the Azure CLI:
    # its client ID names that app, shared by every user of it, never an agent the user owns.
    delegated: bool = False


class MissingRoleError(ApiError):
    """403: a valid token without the endpoint's app role. ``app_id`` is the calling application's ID when
    the token is the application's own (client credentials), so a refused registration can revoke it."""

    def __init__(self, role: str, app_id: str | None) -> None:
        super().__init__(
            403,
            "forbidden",
            f"the token has no '{role}' app role: assign the role to the calling application or user"
            " in the platform's Entra app registration",
            reason="missing_role",
        )
        self.app_id = app_id


class IdentityResolver(Protocol):
    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity: ...

    async def aclose(self) -> None: ...


def text(value: object) -> str | None:
    """``value`` if it is a non-empty string, else ``None``; a lone surrogate (what JSON's ``\\ud800``
    escapes decode to, and no UTF-8 encoder takes) replaced by U+FFFD, so that the caller's names can be
    logged, signed into tokens and stored."""
    if not isinstance(value, str) or not value:
        return None
    if value.isascii():
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
