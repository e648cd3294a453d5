"""Identity mode ``gateway``: the headers an upstream gateway injects after validating the caller's Entra
token, trusted as they come."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import Headers

from ..errors import bad_request
from ..settings import Settings
from .identity import Endpoint, Identity, text

# (email, display name, CWID) from a profile header
ProfileFields = tuple[str | None, str | None, str | None]


class GatewayIdentity:
    def __init__(self, settings: Settings) -> None:
        self._client_id = settings.gateway_client_id_header
        self._user_id = settings.gateway_user_id_header
        self._email = settings.gateway_email_header
        self._profiles = settings.gateway_profile_headers

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        return self.identity(headers.get)

    def identity(self, header: Callable[[str], str | None]) -> Identity:
        """The caller, from ``header(name)``: a header's value (the first, if repeated), or ``None``."""
        email = header(self._email) or None
        display_name = cwid = None
        for name in self._profiles:  # agents registering send none
            raw = header(name)
            if raw:
                profile_email, display_name, cwid = self.profile(raw, name)
                email = email or profile_email
                break
        return Identity(
            client_id=header(self._client_id) or None,
            user_id=header(self._user_id) or None,
            email=email,
            display_name=display_name,
            cwid=cwid,
        )

    def profile(self, raw: str, header: str) -> ProfileFields:
        """Email, display name and CWID from a profile header's value; 400 naming ``header`` if it is not
        a JSON object (plain or base64-encoded)."""
        profile = _decode_profile(raw, header)
        email, cwid = text(profile.get("email")), text(profile.get("cwid"))
        return email, text(profile.get("displayName")) or _joined_name(profile), cwid

    async def aclose(self) -> None:
        return None


def _decode_profile(raw: str, header: str) -> Mapping[str, Any]:
    """The gateway's profile object: JSON, or base64/base64url-encoded JSON (decoded only when not JSON)."""
    for decode in (_plain, _base64):
        try:
            value = orjson.loads(decode(raw))
        except ValueError:  # binascii.Error and UnicodeDecodeError included
            continue
        if isinstance(value, dict):
            return value
    raise bad_request(f"header {header} is not a JSON object (plain or base64-encoded)", header)


def _plain(raw: str) -> str:
    return raw


def _base64(raw: str) -> str:
    padded = raw + "=" * (-len(raw) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")).decode()


def _joined_name(profile: Mapping[str, Any]) -> str | None:
    first, last = text(profile.get("firstName")), text(profile.get("lastName"))
    return f"{first} {last}" if first and last else first or last
