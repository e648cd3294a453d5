"""A Kubernetes service-account token issuer (like an AKS cluster's OIDC issuer) for workload identity.

It has its own signing key, publishes OIDC discovery and JWKS like a cluster does, and writes
projected-token-like files for ``AZURE_FEDERATED_TOKEN_FILE``.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .directory import TOKEN_EXCHANGE_AUDIENCE, stable_id
from .keys import SigningKey


class ServiceAccountIssuer:
    """Signs service-account tokens; the issuer URL is passed in because it depends on the server's port."""

    def __init__(self) -> None:
        self.key = SigningKey()

    def discovery(self, issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk]}

    def token(
        self,
        issuer: str,
        *,
        namespace: str,
        service_account: str,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        issued_at: float | None = None,
        pod_name: str | None = None,
    ) -> str:
        """A token as the kubelet projects it: ``sub`` ``system:serviceaccount:<ns>:<sa>``, ``aud`` a list."""
        for name, value in (("namespace", namespace), ("service_account", service_account)):
            if not value or ":" in value:
                raise ValueError(
                    f"{name}={value!r} is not a Kubernetes object name: pass a non-empty DNS label"
                )
        now = int(issued_at if issued_at is not None else time.time())
        pod = pod_name or f"{service_account}-0"
        claims = {
            "aud": [audience],
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "iss": issuer,
            "jti": str(uuid.uuid4()),
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": pod, "uid": stable_id("pod", namespace, pod)},
                "serviceaccount": {
                    "name": service_account,
                    "uid": stable_id("serviceaccount", namespace, service_account),
                },
            },
        }
        return self.key.sign(claims)


def write_atomically(path: Path, content: str) -> Path:
    """Replace ``path`` in one step, as the kubelet swaps projected tokens: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
