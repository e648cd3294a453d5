"""Token checks and minting for the LiveKit stand-in, done with livekit-api exactly as the server would."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import jwt
from livekit import api

from .exceptions import TokenRejectedError
from .records import TokenClaims


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenAuthority:
    """Verifies and mints HS256 LiveKit tokens for one API key/secret pair."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self._api_secret = api_secret
        self._verifier = api.TokenVerifier(api_key, api_secret)

    def verify(self, token: str) -> tuple[TokenClaims, api.access_token.Claims]:
        """Both our record of the claims and livekit-api's parsed view (grants, roomConfig).

        In livekit-server's order (``pkg/service/auth.go``): the token is parsed, its ``iss`` looked up among
        the server's API keys (an unknown key: "invalid API key"), and only then is its signature verified
        with that key's secret."""
        try:
            unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenRejectedError(f"token is not a valid HS256 JWT ({type(exc).__name__})") from None
        if unverified.get("iss") != self.api_key:
            raise TokenRejectedError(
                f"invalid API key: the token's iss {str(unverified.get('iss'))[:64]!r} is not a key this"
                f" server knows (it knows {self.api_key!r}); mint the token with the server's key"
            )
        try:
            # signature and issuer first, so an expired but genuine token still tells us who sent it
            payload: dict[str, Any] = jwt.decode(
                token,
                key=self._api_secret,
                algorithms=["HS256"],
                issuer=self.api_key,
                options={"verify_exp": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError:
            raise TokenRejectedError(
                f"token signature does not verify with the API secret of api key {self.api_key!r}: "
                "sign it with the stand-in's api_secret"
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenRejectedError(
                f"token iss is not the stand-in's api key {self.api_key!r}: mint it with that key"
            ) from None
        except jwt.PyJWTError as exc:
            raise TokenRejectedError(f"token is not a valid HS256 JWT ({type(exc).__name__})") from None
        claims = TokenClaims(
            identity=str(payload.get("sub", "")),
            issuer=str(payload.get("iss", "")),
            expires_at=int(payload.get("exp", 0)),
            not_before=int(payload["nbf"]) if "nbf" in payload else None,
            video=dict(payload.get("video") or {}),
            payload=payload,
            fingerprint=fingerprint(token),
        )
        try:
            parsed = self._verifier.verify(token)
        except jwt.ExpiredSignatureError:
            expired = dt.datetime.fromtimestamp(claims.expires_at, dt.timezone.utc).isoformat()
            raise TokenRejectedError(f"token expired at {expired}: mint a fresh one", claims) from None
        except jwt.MissingRequiredClaimError:
            raise TokenRejectedError("token has no exp claim: mint it with a ttl", claims) from None
        except jwt.PyJWTError as exc:
            raise TokenRejectedError(f"token rejected ({type(exc).__name__}: {exc})", claims) from None
        return claims, parsed

    def mint_agent_join(
        self,
        *,
        room: str,
        identity: str,
        name: str,
        metadata: str,
        attributes: dict[str, str],
        permissions: dict[str, Any],
        ttl: dt.timedelta = dt.timedelta(hours=6),
    ) -> str:
        """The room token the server hands a worker in ``JobAssignment.token`` for its agent participant."""
        grants = api.VideoGrants(
            room_join=True,
            room=room,
            agent=True,
            can_publish=bool(permissions.get("can_publish", True)),
            can_subscribe=bool(permissions.get("can_subscribe", True)),
            can_publish_data=bool(permissions.get("can_publish_data", True)),
            can_update_own_metadata=True,
            hidden=bool(permissions.get("hidden", False)) or None,
        )
        token = (
            api.AccessToken(self.api_key, self._api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_kind("agent")
            .with_grants(grants)
            .with_ttl(ttl)
        )
        if metadata:
            token = token.with_metadata(metadata)
        if attributes:
            token = token.with_attributes(attributes)
        return token.to_jwt()

    def sign_webhook(self, body: str) -> str:
        """The raw JWT for a webhook's ``Authorization`` header: its ``sha256`` claim binds the body."""
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        return (
            api.AccessToken(self.api_key, self._api_secret)
            .with_sha256(digest)
            .with_ttl(dt.timedelta(minutes=5))
            .to_jwt()
        )
