"""Entra ID (AADSTS) and Microsoft Graph error responses, in the shapes the real services send."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp import web

from ..server import json_response


class EntraError(Exception):
    """An OAuth error the token endpoint answers with: HTTP status, OAuth ``error`` and AADSTS number."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message

    def body(self, correlation_id: str | None) -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc)
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
                f"Correlation ID: {correlation} Timestamp: {now.strftime('%Y-%m-%d %H:%M:%S')}Z"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
        }

    def response(self, correlation_id: str | None) -> web.Response:
        return json_response(self.body(correlation_id), status=self.status)


def tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud.",
    )


def missing_parameter(name: str) -> EntraError:
    return EntraError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )


def unsupported_grant_type(grant_type: str) -> EntraError:
    return EntraError(
        400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
    )


def unknown_client(client_id: str, tenant: str) -> EntraError:
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def disabled_app(app_id: str, display_name: str) -> EntraError:
    return EntraError(
        400, "unauthorized_client", 7000112, f"Application '{app_id}'({display_name}) is disabled."
    )


def missing_client_credential() -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def invalid_client_secret(app_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        f"value, not the client secret ID, for a secret added to app '{app_id}'.",
    )


def invalid_assertion_type(value: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        90014,
        f"The client_assertion_type '{value}' is not supported: send "
        "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
    )


def malformed_assertion() -> EntraError:
    return EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")


_FIC_HINT = (
    "Please check your federated identity credential Subject, Audience and Issuer against the presented "
    "assertion."
)


def no_matching_issuer(issuer: str) -> EntraError:
    return EntraError(
        400,
        "invalid_client",
        700211,
        f"No matching federated identity record found for presented assertion issuer '{issuer}'. {_FIC_HINT}",
    )


def no_matching_audience(audience: str) -> EntraError:
    return EntraError(
        400,
        "invalid_client",
        700212,
        f"No matching federated identity record found for presented assertion audience '{audience}'. "
        f"{_FIC_HINT}",
    )


def no_matching_subject(subject: str) -> EntraError:
    return EntraError(
        400,
        "invalid_client",
        700213,
        f"No matching federated identity record found for presented assertion subject '{subject}'. "
        f"{_FIC_HINT}",
    )


def assertion_out_of_time_range(now: int, not_before: int | None, expires: int | None) -> EntraError:
    def _fmt(value: int | None) -> str:
        if value is None:
            return "(missing)"
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")

    return EntraError(
        400,
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {_fmt(now)}, assertion valid "
        f"from {_fmt(not_before)}, expiry time of assertion {_fmt(expires)}.",
    )


def assertion_signature_invalid() -> EntraError:
    return EntraError(400, "invalid_client", 700027, "Client assertion failed signature validation.")


def issuer_keys_unavailable(issuer: str) -> EntraError:
    return EntraError(
        400,
        "invalid_client",
        90061,
        f"Request to External OIDC endpoint failed: could not read the signing keys of issuer '{issuer}'.",
    )


def scope_not_default(scope: str) -> EntraError:
    return EntraError(
        400,
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
        "with /.default suffixed to the resource identifier (application ID URI).",
    )


def invalid_scope(scope: str) -> EntraError:
    return EntraError(
        400,
        "invalid_scope",
        70011,
        f"The provided request must include a 'scope' input parameter. The provided value for the input "
        f"parameter 'scope' ('{scope}') is not valid: request one resource's '/.default' scope.",
    )


def unknown_resource(resource: str, tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant}. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def graph_error(status: int, code: str, message: str, client_request_id: str | None = None) -> web.Response:
    """Graph's error envelope: ``{"error": {"code", "message", "innerError": {...}}}``."""
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }
    headers = {"request-id": request_id}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    return json_response(body, status=status, headers=headers)
