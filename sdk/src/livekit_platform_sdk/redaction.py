"""Text that came from outside (a platform error, an Entra error, a network error) made safe to log and raise:
token-like strings and the secrets the SDK sent are replaced, control characters dropped, the length bounded.

A server or a misrouted proxy may echo the request, bearer token included, into its error; whatever the SDK
logs, raises, shows at ``/ready`` or puts in a span passes through here first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# A JWT or one of its segments: header and payload are base64url JSON, so they start with "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}")
_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+")
# names of fields that hold secrets, not a secret
_SECRET_NAMES = "|".join(
    [
        *("client_secret", "client_assertion", "assertion", "access_token", "refresh_token", "id_token"),
        *("livekit_token", "token", "secret", "password", "authorization"),
    ]
)
# name=value (a form body or query string) and "name": "value" (JSON), the value whatever it is.
_FORM_FIELD = re.compile(rf"(?i)\b({_SECRET_NAMES})=[^&\s\"']+")
_JSON_FIELD = re.compile(rf'(?i)"({_SECRET_NAMES})"(\s*:\s*)"(?:[^"\\]|\\.)*"')
# Opaque credentials (client secrets, signatures, API keys) are long runs of base64 characters; identifiers a
# reader needs (GUIDs, hosts, error codes) are shorter or broken up by other characters ("/" too, so that
# URL paths survive).
_OPAQUE = re.compile(r"[A-Za-z0-9+_~=-]{40,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]+")
_MIN_SECRET = 8
_MIN_SEGMENT = 16


def redact(text: str, secrets: Iterable[str] = (), *, limit: int = 300, keep_newlines: bool = False) -> str:
    """``text`` with every known secret (and each long part of one), every JWT, bearer value, secret-named
    field and long opaque run replaced by ``[redacted]``; control characters (and, unless ``keep_newlines``,
    line breaks) become spaces; cut to ``limit`` characters."""
    for secret in _pieces(secrets):
        text = text.replace(secret, REDACTED)
    text = _JWT.sub(REDACTED, text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _FORM_FIELD.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _JSON_FIELD.sub(lambda m: f'"{m.group(1)}"{m.group(2)}"{REDACTED}"', text)
    text = _OPAQUE.sub(REDACTED, text)
    if not keep_newlines:
        text = text.replace("\n", " ")
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + "..."
    return text


def _pieces(secrets: Iterable[str]) -> list[str]:
    """The secrets and their dot-separated segments long enough to identify them, longest first (so a whole
    token goes before its parts)."""
    found: set[str] = set()
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            found.add(secret)
            found.update(part for part in secret.split(".") if len(part) >= _MIN_SEGMENT)
    return sorted(found, key=len, reverse=True)
