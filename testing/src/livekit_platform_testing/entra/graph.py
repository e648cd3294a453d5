"""Microsoft Graph v1.0 ``applications`` reads, guarded by app-only tokens from the Entra stand-in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jwt
from aiohttp import web

from ..server import json_response
from .directory import GRAPH_APP_ID, GRAPH_RESOURCE, AppRegistration, Directory
from .exceptions import graph_error
from .keys import SigningKey
from .records import GraphRequest, Records
from .tokens import Issuers

_BY_APP_ID = re.compile(r"^applications\(appId='([^']*)'\)$")
_BY_OBJECT_ID = re.compile(r"^applications/([^/]+)$")
# Application permissions that let an app read any application object, as in the real Graph.
READ_APPLICATIONS_ROLES = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}
)


def application_resource(app: AppRegistration, pre_authorized: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """The v1.0 ``application`` entity (the properties this stand-in models)."""
    return {
        "id": app.object_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "identifierUris": list(app.identifier_uris),
        "signInAudience": "AzureADMyOrg",
        "appRoles": [
            {
                "allowedMemberTypes": ["Application"],
                "description": role,
                "displayName": role,
                "id": role_id,
                "isEnabled": True,
                "origin": "Application",
                "value": role,
            }
            for role, role_id in app.app_role_ids.items()
        ],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            # Graph reports null for the v1 default, 2 when the app asked for v2 tokens.
            "requestedAccessTokenVersion": 2 if app.access_token_version == 2 else None,
            "oauth2PermissionScopes": [
                {
                    "adminConsentDescription": f"Allow the application to {value} on behalf of the caller.",
                    "adminConsentDisplayName": value,
                    "id": scope_id,
                    "isEnabled": True,
                    "type": "Admin",
                    "userConsentDescription": None,
                    "userConsentDisplayName": None,
                    "value": value,
                }
                for value, scope_id in app.exposed_scopes.items()
            ],
            # v1.0 spells it delegatedPermissionIds (beta says permissionIds).
            "preAuthorizedApplications": [
                {"appId": client, "delegatedPermissionIds": ids} for client, ids in pre_authorized
            ],
        },
    }


class GraphApi:
    """Serves ``GET <graph_url>/applications(appId='...')`` and ``/applications/{id}`` with ``$select``."""

    def __init__(
        self,
        *,
        directory: Directory,
        key: SigningKey,
        issuers: Callable[[], Issuers],
        graph_url: Callable[[], str],
        records: Records,
    ) -> None:
        self._directory = directory
        self._key = key
        self._issuers = issuers
        self._graph_url = graph_url
        self._records = records

    async def handle(self, request: web.Request) -> web.Response:
        caller: str | None = None
        error_code: str | None = None
        try:
            caller = self._authorize(request)
            response = self._serve(request)
        except _GraphError as exc:
            error_code = exc.code
            response = graph_error(
                exc.status, exc.code, exc.message, request.headers.get("client-request-id")
            )
        self._records.add_graph_request(
            GraphRequest(
                time=time.time(),
                method=request.method,
                path=request.path_qs,
                caller_app_id=caller,
                status=response.status,
                error_code=error_code,
            )
        )
        return response

    def _authorize(self, request: web.Request) -> str | None:
        """The calling app's ID, if its bearer token is valid and holds an applications-read role."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        issuers = self._issuers()
        try:
            claims = jwt.decode(
                token.strip(),
                self._key.public_key,
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/", GRAPH_APP_ID],
                issuer=[issuers.v1, issuers.v2],
                options={"require": ["exp", "iss", "aud", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            ) from None
        except jwt.PyJWTError as exc:
            raise _GraphError(
                401, "InvalidAuthenticationToken", f"Access token validation failure. {exc}"
            ) from None
        if not set(claims.get("roles") or []) & READ_APPLICATIONS_ROLES:
            raise _GraphError(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        caller = claims.get("appid") or claims.get("azp")
        return caller if isinstance(caller, str) else None

    def _serve(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise _GraphError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        segment = request.match_info["path"]
        by_app_id, by_object_id = _BY_APP_ID.match(segment), _BY_OBJECT_ID.match(segment)
        if by_app_id:
            key = by_app_id.group(1)
            app = self._directory.find(key)
        elif by_object_id:
            key = by_object_id.group(1)
            app = next((a for a in self._directory.apps() if a.object_id == key), None)
        else:
            raise _GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        # Microsoft services and managed identities are service principals only, not applications.
        if app is None or app.built_in or app.managed_identity:
            raise _GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not "
                "present.",
            )
        entity = application_resource(app, self._directory.pre_authorized(app.app_id))
        select = [s.strip() for s in request.query.get("$select", "").split(",") if s.strip()]
        unknown = [s for s in select if s not in entity]
        if unknown:
            raise _GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.application'.",
            )
        context = f"{self._graph_url()}/$metadata#applications"
        if select:
            entity = {k: v for k, v in entity.items() if k in select}
            context += f"({','.join(select)})"
        return json_response({"@odata.context": f"{context}/$entity", **entity})


class _GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
