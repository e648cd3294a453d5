"""Identity mode ``gateway``: the headers an upstream gateway injects after validating the caller's Entra
token, trusted when the request proves it came through the gateway (``LKPS_GATEWAY_SHARED_SECRET``, compared
in constant time) and carries each identity header at most once."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import Headers

from ..errors import ApiError, bad_request
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
        self._secret_header = settings.gateway_secret_header
        secret = settings.gateway_shared_secret
        # None: no proof asked (``lkps dev`` only; ``lkps serve`` refuses to start without it)
        self._secret = None if secret is None else secret.get_secret_value().encode("latin-1")
        names = (self._client_id, self._user_id, self._email, *self._profiles, self._secret_header)
        self.read = tuple(dict.fromkeys(name for name in names if name))
        """The headers read: the identity headers and the secret's (each refused when repeated)."""

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        found: dict[str, str] = {}
        for name in self.read:
            values = headers.getlist(name)
            if len(values) > 1:
                raise repeated(name)
            if values:
                found[name] = values[0]
        self.check_secret(found.get(self._secret_header))
        return self.identity(found.get)

    def check_secret(self, sent: str | None) -> None:
        """401 unless ``sent`` is the gateway's shared secret (when one is configured)."""
        if self._secret is None:
            return
        # compare_digest takes the same time for any wrong value of a given length; the secret's length is
        # not a secret worth the cost of hashing both sides on every request.
        if sent is None or not hmac.compare_digest(sent.encode("latin-1"), self._secret):
            raise ApiError(
                401,
                "unauthorized",
                f"the request did not come through the gateway: header {self._secret_header} is missing or"
                " wrong (call the platform through its gateway)",
                self._secret_header,
                reason="gateway_secret",
            )

    def identity(self, header: Callable[[str], str | None]) -> Identity:
        """The caller, from ``header(name)``: a header's value, or ``None``."""
        email = (header(self._email) if self._email else None) or None
        display_name = cwid = None
        for name in self._profiles:  # agents registering send none
            raw = header(name) if name else None
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


def repeated(header: str) -> ApiError:
    return bad_request(
        f"header {header} is repeated: an identity header must be set once, by the gateway (which must drop"
        " every copy the caller sent)",
        header,
    )


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
