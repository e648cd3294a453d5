"""The Entra stand-in's tenant endpoints on the wire: the token endpoint (v2.0 and v1), the tenant's discovery
documents and JWKS, and the Kubernetes issuer's discovery and JWKS.

Microsoft Graph (``graph``), the managed-identity endpoint (``imds``) and the admin API (``admin``) have
modules of their own; ``urls`` routes to all of them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ..server import json_response
from . import exceptions as errors
from .models import EntraBackend
from .records import TokenRequest
from .tokens import AUTH_ASSERTION, AUTH_SECRET

Handler = Callable[[web.Request], Awaitable[web.Response]]


class TenantResponses:
    """Handlers for ``/{tenant}/...`` and ``/kubernetes/...``; URLs are callables (they need the port)."""

    def __init__(self, backend: EntraBackend, *, kubernetes_issuer_url: Callable[[], str]) -> None:
        self._backend = backend
        self._kubernetes_issuer_url = kubernetes_issuer_url

    def tenant_json(self, document: Callable[[], dict[str, Any]]) -> Handler:
        """A GET handler serving ``document()`` for this tenant and Entra's AADSTS90002 for any other."""

        async def handle(request: web.Request) -> web.Response:
            try:
                self._backend.check_tenant(request.match_info["tenant"])
            except errors.EntraError as exc:
                return exc.response(request.headers.get("client-request-id"))
            return json_response(document())

        return handle

    async def kubernetes_discovery(self, request: web.Request) -> web.Response:
        return json_response(self._backend.kubernetes.discovery(self._kubernetes_issuer_url()))

    async def kubernetes_jwks(self, request: web.Request) -> web.Response:
        return json_response(self._backend.kubernetes.jwks())

    async def token(self, request: web.Request) -> web.Response:
        backend = self._backend
        v1 = request.path.endswith("/oauth2/token")
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        basic_id, basic_secret = _basic_credentials(request)
        client_id = fields.get("client_id") or basic_id
        secret = fields.get("client_secret") or basic_secret
        assertion = fields.get("client_assertion")
        client_auth = "client_secret" if secret else "client_assertion" if assertion else None
        scope = fields.get("resource" if v1 else "scope")

        def record(outcome: str, error: errors.EntraError | None = None) -> None:
            backend.records.add_token_request(
                TokenRequest(
                    time=time.time(),
                    endpoint="token_v1" if v1 else "token",
                    client_id=client_id,
                    grant_type=fields.get("grant_type"),
                    client_auth=client_auth,
                    scope=scope,
                    outcome=outcome,
                    error=error.error if error else None,
                    error_code=error.code if error else None,
                )
            )

        try:
            backend.check_tenant(request.match_info["tenant"])
            client = await backend.authenticate_client(fields, client_id, secret, assertion)
            requested, resource = backend.requested_resource(scope, v1=v1)
        except errors.EntraError as exc:
            record("error", exc)
            return exc.response(request.headers.get("client-request-id"))
        token, claims = backend.issue_token(
            client, resource, requested, AUTH_SECRET if client_auth == "client_secret" else AUTH_ASSERTION
        )
        record("issued")
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": backend.token_lifetime,
            "ext_expires_in": backend.token_lifetime,
            "access_token": token,
        }
        if v1:
            body.update(expires_on=str(claims["exp"]), not_before=str(claims["nbf"]), resource=requested)
        return json_response(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def _basic_credentials(request: web.Request) -> tuple[str | None, str | None]:
    """``client_secret_basic``: the client ID and secret from an ``Authorization: Basic`` header."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except ValueError:
        return None, None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else (None, None)
