"""The managed-identity endpoint (IMDS ``GET /metadata/identity/oauth2/token``), as pod identity serves it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..server import json_response
from . import exceptions as errors
from .directory import AppRegistration, Directory
from .records import Records, TokenRequest
from .tokens import AUTH_ASSERTION

IMDS_TOKEN_PATH = "/metadata/identity/oauth2/token"  # noqa: S105 (a URL path, not a secret)

# (client, resource, requested resource, client auth) -> (signed token, claims)
IssueToken = Callable[[AppRegistration, AppRegistration, str, str], tuple[str, dict[str, Any]]]


class ImdsEndpoint:
    """Issues tokens to the tenant's managed identities, chosen by ``client_id`` or ``object_id``.

    Without either, the only managed identity is used (as on a VM with one user-assigned identity).
    Errors are IMDS's ``{"error", "error_description"}`` with HTTP 400, which azure-identity reports as
    ``CredentialUnavailableError``.
    """

    def __init__(self, *, directory: Directory, records: Records, issue: IssueToken, tenant_id: str) -> None:
        self._directory = directory
        self._records = records
        self._issue = issue
        self._tenant_id = tenant_id

    def _record(
        self, client_id: str | None, resource: str | None, error: str | None, code: int | None
    ) -> None:
        self._records.add_token_request(
            TokenRequest(
                time=time.time(),
                endpoint="imds",
                client_id=client_id,
                grant_type=None,
                client_auth="managed_identity",
                scope=resource,
                outcome="error" if error else "issued",
                error=error,
                error_code=code,
            )
        )

    def _select(self, query: Any) -> AppRegistration | str:
        """The identity the request names, or the IMDS error description."""
        identities = [a for a in self._directory.apps() if a.managed_identity]
        if query.get("client_id"):
            matches = [a for a in identities if a.app_id.lower() == query["client_id"].lower()]
        elif query.get("object_id"):
            matches = [a for a in identities if a.service_principal_id == query["object_id"]]
        elif query.get("msi_res_id"):
            matches = []  # ARM resource IDs are not modelled
        elif len(identities) > 1:
            return (
                "Multiple user assigned identities exist, please specify the clientId / resourceId of the "
                "identity in the token request"
            )
        else:
            matches = identities
        if not matches or not matches[0].enabled:
            return "Identity not found"
        return matches[0]

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query
        resource = query.get("resource")

        def fail(error: str, description: str, code: int | None = None) -> web.Response:
            self._record(query.get("client_id"), resource, error, code)
            return json_response({"error": error, "error_description": description}, status=400)

        # IMDS refuses requests without the header so a server-side request forgery cannot reach it.
        if request.headers.get("Metadata", "").lower() != "true":
            return fail("invalid_request", "Required metadata header not specified")
        if not query.get("api-version"):
            return fail("invalid_request", "Required query variable 'api-version' is missing")
        if not resource:
            return fail("invalid_request", "Required audience parameter not specified")
        identity = self._select(query)
        if isinstance(identity, str):
            return fail("invalid_request", identity)
        found = self._directory.find_resource(resource)
        if found is None or found.managed_identity:
            exc = errors.unknown_resource(resource, self._tenant_id)
            return fail("invalid_resource", str(exc), exc.code)
        token, claims = self._issue(identity, found, resource, AUTH_ASSERTION)
        self._record(identity.app_id, resource, None, None)
        lifetime = str(claims["exp"] - claims["iat"])
        return json_response(
            {
                "access_token": token,
                "client_id": identity.app_id,
                "expires_in": lifetime,
                "expires_on": str(claims["exp"]),
                "ext_expires_in": lifetime,
                "not_before": str(claims["nbf"]),
                "resource": resource,
                "token_type": "Bearer",
            }
        )
