"""The tenant's OpenID Connect discovery documents (v2.0 and v1), shaped like Entra's."""

from __future__ import annotations

from typing import Any

_AUTH_METHODS = ["client_secret_post", "private_key_jwt", "client_secret_basic"]


def openid_configuration_v2(*, authority: str, issuer: str) -> dict[str, Any]:
    """What MSAL reads from ``{authority}/v2.0/.well-known/openid-configuration`` (it needs the token and
    authorization endpoints; only the token endpoint is served)."""
    return {
        "token_endpoint": f"{authority}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": _AUTH_METHODS,
        "jwks_uri": f"{authority}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{authority}/oauth2/v2.0/logout",
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def openid_configuration_v1(*, authority: str, issuer: str) -> dict[str, Any]:
    return {
        "token_endpoint": f"{authority}/oauth2/token",
        "token_endpoint_auth_methods_supported": _AUTH_METHODS,
        "jwks_uri": f"{authority}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "authorization_endpoint": f"{authority}/oauth2/authorize",
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
    }
