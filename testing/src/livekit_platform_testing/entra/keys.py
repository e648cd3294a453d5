"""An RSA signing key and its JWK: signs the Entra stand-in's tokens and its Kubernetes issuer's tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """A fresh RSA-2048 key; ``kid`` is its RFC 7638 thumbprint, so it is stable for the key's lifetime."""

    def __init__(self) -> None:
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._private_key.public_key()
        public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        canonical = json.dumps(
            {"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]}, separators=(",", ":"), sort_keys=True
        )
        self.kid = _b64url(hashlib.sha256(canonical.encode("ascii")).digest())
        self.jwk: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": public_jwk["n"],
            "e": public_jwk["e"],
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )
